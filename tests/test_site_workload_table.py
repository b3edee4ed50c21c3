"""The workload table's data (cost.html, #tw-live): input and output USD/Mtok on both bases from the
request mart's split, and the blended table with a plain note on a warehouse without the split."""
from __future__ import annotations

import json
import re
from pathlib import Path

import duckdb
import pytest

from dashboards.pages._core import Warehouse
from dashboards.pages.workload_table import SPLIT, workload_data


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> Path:
    from tests.site_fixture import build_fixture

    return build_fixture(tmp_path_factory.mktemp("workload") / "warehouse.duckdb", n_requests=3000, days=3)


def _live(site: Path) -> dict:
    html = (site / "cost.html").read_text(encoding="utf-8")
    return json.loads(re.search(r'<script type="application/json" id="tw-live">(.*?)</script>', html, re.S)
                      .group(1))["cost-workload-table"]


def test_the_daily_sums_carry_the_marts_input_output_split(db):
    wh = Warehouse(db)
    try:
        df = workload_data(wh)
    finally:
        wh.close()
    con = duckdb.connect(str(db), read_only=True)
    try:
        exp = con.execute("select sum(prompt_tokens), sum(completion_tokens), " +
                          ", ".join(f"sum({c})" for c in SPLIT) + " from marts.fct_request_energy").fetchone()
    finally:
        con.close()
    got = [df[c].sum() for c in ["prompt_tokens", "completion_tokens", *SPLIT]]
    assert got == pytest.approx(list(exp), rel=1e-12)
    # input + output = blended, per row, on both bases
    assert (df.input_cost_usd + df.output_cost_usd).to_numpy() == pytest.approx(df.cost_usd.to_numpy(), rel=1e-9)
    assert ((df.input_usage_cost_usd + df.output_usage_cost_usd).to_numpy()
            == pytest.approx(df.usage_cost_usd.to_numpy(), rel=1e-9))


def test_the_table_shows_input_and_output_usd_per_mtok_on_both_bases(db, tmp_path):
    from dashboards.site import build_site

    res = build_site(db, tmp_path / "site", images=False)
    live = _live(Path(res["out_dir"]))
    keys = [c["key"] for c in live["columns"]]
    for k in ("input_usd_per_mtok", "output_usd_per_mtok", "input_usage_usd_per_mtok", "output_usage_usd_per_mtok"):
        assert k in keys
    ratios = {m["name"]: m.get("ratio") for m in live["measures"]}
    assert ratios["input_usd_per_mtok"] == ["input_cost_usd", "prompt_tokens"]
    assert ratios["output_usage_usd_per_mtok"] == ["output_usage_cost_usd", "completion_tokens"]
    assert set(live["sums"]) >= {"prompt_tokens", "completion_tokens", *SPLIT}


def test_a_warehouse_without_the_split_gets_the_blended_table_and_a_note(db, tmp_path):
    from dashboards.site import build_site

    old = tmp_path / "old.duckdb"
    old.write_bytes(db.read_bytes())
    con = duckdb.connect(str(old))
    for c in SPLIT:
        con.execute(f"alter table marts.fct_request_energy drop column {c}")
    con.close()
    res = build_site(old, tmp_path / "site", images=False)
    assert not res["errors"], res["errors"]
    live = _live(Path(res["out_dir"]))
    keys = [c["key"] for c in live["columns"]]
    assert "usd_per_mtok" in keys and "input_usd_per_mtok" not in keys
    assert any("No input/output split" in n for n in res["notes"])
