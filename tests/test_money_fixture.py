"""The money tests' shared warehouse (tests/money_fixture.py) builds, and every asset check passes
but the one data-quality warning its fleet is built to raise."""
from __future__ import annotations

import duckdb

# the fleet's spare H100 (in no replica) and the ASIC replica with no traffic report samples but
# serve no request: the data-quality test warns (severity warn) about exactly those node-days
EXPECTED_WARNING = ("marts/fct_data_quality_daily", "assert_every_node_day_matches")


def test_money_warehouse_builds(money_warehouse):
    home, facts = money_warehouse
    assert facts["success"], facts["failures"]
    assert (home / "warehouse.duckdb").exists()
    failed = [k for k, ok in facts["checks"].items() if not ok]
    assert failed == [EXPECTED_WARNING], failed
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        flagged = con.execute("""
            select distinct reason, node from marts.fct_data_quality_daily
            where reason in ('devices with samples but no requests', 'requests whose devices report no samples')
        """).fetchall()
    finally:
        con.close()
    assert flagged and {r for r, _ in flagged} == {"devices with samples but no requests"}, flagged
    assert {n for _, n in flagged} <= {"h100-0", "asic-0"}, flagged
