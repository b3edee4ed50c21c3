"""Shared fixtures: a tiny simulated fleet run once through the real pipeline."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


@pytest.fixture(scope="session")
def tiny_home(tmp_path_factory) -> Path:
    """The tiny fleet (H100, MI300X, ASIC) for 2 days at 10 s, through Dagster, dbt, DuckDB and the site."""
    from collectors.sim.simulate import simulate
    from pipelines.cli import run_pipeline

    home = tmp_path_factory.mktemp("tiny_home")
    simulate("tiny", home, "2026-10-01", 2, 10.0, 11, progress=False)
    result = run_pipeline(home, raise_on_error=True)
    assert result.success
    return home


@pytest.fixture(scope="session")
def money_warehouse() -> tuple[Path, dict]:
    """(home, facts): the money test fleet (tests/money_fixture.py), 30 days through every asset
    but the site, built once per session; facts: success, failures, asset checks."""
    from tests.money_fixture import money_home

    return money_home()


@pytest.fixture(scope="module")
def money_con(money_warehouse):
    """A read-only connection to the money warehouse, one per test module (closed with it)."""
    import duckdb

    home, facts = money_warehouse
    assert facts["success"], facts["failures"]
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    yield con
    con.close()
