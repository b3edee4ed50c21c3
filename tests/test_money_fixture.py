"""The money tests' shared warehouse (tests/money_fixture.py) builds, and every asset check passes."""
from __future__ import annotations


def test_money_warehouse_builds(money_warehouse):
    home, facts = money_warehouse
    assert facts["success"], facts["failures"]
    assert (home / "warehouse.duckdb").exists()
    failed = [k for k, ok in facts["checks"].items() if not ok]
    assert not failed, failed
