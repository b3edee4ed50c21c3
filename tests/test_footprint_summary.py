"""The footprint lines `tokenwatt demo` prints: the median full-boundary Wh per request and its split."""
from __future__ import annotations

import re

import duckdb
import pytest

from warehouse.footprint.summary import footprint_lines

pytestmark = pytest.mark.slow


def test_lines_give_the_marts_median_and_a_split_that_adds_up(tiny_home):
    lines = footprint_lines(tiny_home / "warehouse.duckdb")
    con = duckdb.connect(str(tiny_home / "warehouse.duckdb"), read_only=True)
    wh, = con.execute("select median(full_wh) from marts.fct_request_footprint").fetchone()
    con.close()
    assert lines[0].startswith(f"median request, full boundary: {wh:.3f} Wh")
    split = [int(x) for x in re.search(r"facility: (\d+) / (\d+) / (\d+) / (\d+) %", lines[1]).groups()]
    assert 98 <= sum(split) <= 102 and split[0] > split[1] > 0  # rounded shares of one whole
    assert "0.24 Wh" in lines[2] and "58 / 25 / 10 / 8 %" in lines[2]


def test_a_warehouse_without_the_mart_says_so(tmp_path):
    duckdb.connect(str(tmp_path / "w.duckdb")).close()
    assert footprint_lines(tmp_path / "w.duckdb") == [
        "footprint: marts.fct_request_footprint does not exist (run the pipeline)"]
