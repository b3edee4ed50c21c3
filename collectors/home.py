"""The layout of a tokenwatt home directory: the one place that spells it.

Every reader and writer (simulator, agent, loader, attribution, dbt, site, Dagster) asks a
:class:`Home` for its paths; the home itself travels as an argument, never through
``os.environ`` inside the process.

    HOME/spool/            hive-partitioned Parquet from collectors and the simulator
    HOME/truth/            the simulator's ground truth (simulated homes only)
    HOME/sim.json          what the simulator was asked for
    HOME/warehouse.duckdb  the DuckDB warehouse
    HOME/site/             the static dashboard site
    HOME/dbt/              this home's dbt profile and target (manifest, run results)
    HOME/dagster/          the persistent Dagster instance (runs, materialisations, checks)
"""
from __future__ import annotations

from pathlib import Path


class Home:
    """Paths inside one tokenwatt home directory."""

    __slots__ = ("root",)

    def __init__(self, home: str | Path):
        self.root = Path(home).resolve()

    def __repr__(self) -> str:
        return f"Home({str(self.root)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Home) and other.root == self.root

    def __hash__(self) -> int:
        return hash(self.root)

    @property
    def spool(self) -> Path:
        return self.root / "spool"

    @property
    def truth(self) -> Path:
        return self.root / "truth"

    @property
    def db(self) -> Path:
        return self.root / "warehouse.duckdb"

    @property
    def site(self) -> Path:
        return self.root / "site"

    @property
    def fleet_meta(self) -> Path:
        return self.root / "sim.json"

    @property
    def dbt(self) -> Path:
        return self.root / "dbt"

    @property
    def dagster(self) -> Path:
        return self.root / "dagster"

    def warehouse_files(self) -> tuple[Path, ...]:
        """The warehouse file and its write-ahead log."""
        return (self.db, self.db.with_name(self.db.name + ".wal"))
