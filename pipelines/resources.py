"""Thin Dagster resources: the tokenwatt home and its DuckDB warehouse."""
from __future__ import annotations

import dagster as dg

from warehouse.ingest.load import connect

from collectors.home import Home


class TokenwattHome(dg.ConfigurableResource):
    """A tokenwatt home directory: spool/, truth/, warehouse.duckdb, site/."""

    path: str

    @property
    def home(self) -> Home:
        return Home(self.path)

    def connect(self):
        self.home.root.mkdir(parents=True, exist_ok=True)
        return connect(self.home.db)
