"""The home's persistent Dagster instance, HOME/dagster: the run history `make dev` shows.

`tokenwatt run` and `tokenwatt demo` materialise into it, so a Dagster UI started with
``DAGSTER_HOME=HOME/dagster`` (what `make dev` does) lists their runs, materialisations and
asset check results. The folder is a plain Dagster home: ``dagster.yaml`` plus the SQLite run,
event-log and schedule storage Dagster keeps beside it. The instance is opened from that folder
(``DagsterInstance.from_config``), never by setting ``DAGSTER_HOME`` in this process.
"""
from __future__ import annotations

from pathlib import Path

import dagster as dg

from collectors.home import Home

# written once; a user's own dagster.yaml in the folder is left alone
DAGSTER_YAML = """\
# The Dagster instance of this tokenwatt home (written by tokenwatt; edit freely).
# `make dev` starts the UI with DAGSTER_HOME set to this folder.
telemetry:
  enabled: false
"""


def instance_dir(home: Home | str | Path) -> Path:
    """HOME/dagster with its dagster.yaml (created when missing)."""
    home = home if isinstance(home, Home) else Home(home)
    home.dagster.mkdir(parents=True, exist_ok=True)
    cfg = home.dagster / "dagster.yaml"
    if not cfg.exists():
        cfg.write_text(DAGSTER_YAML)
    return home.dagster


def home_instance(home: Home | str | Path) -> dg.DagsterInstance:
    """The persistent instance of ``home`` (the caller disposes of it, e.g. ``with home_instance(h) as i``)."""
    return dg.DagsterInstance.from_config(str(instance_dir(home)))
