"""The Cost and Forecast pages, built from the money warehouse (real simulator, Dagster, dbt):
the Cost page shows input vs output $/Mtok per chip and model and the margins; the Forecast page
shows the bands' measured coverage next to them. Figures are compared with the marts."""
from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pandas as pd
import pytest

from dashboards.site import build_site


@pytest.fixture(scope="module")
def site(money_warehouse, tmp_path_factory) -> Path:
    home, facts = money_warehouse
    assert facts["success"], facts["failures"]
    res = build_site(home / "warehouse.duckdb", tmp_path_factory.mktemp("money-site") / "site", images=False)
    assert not res["errors"], res["errors"]
    return Path(res["out_dir"])


def _order(doc: str, *ids: str) -> list[int]:
    pos = [doc.find(f'id="fig-{i}"') for i in ids]
    assert all(p >= 0 for p in pos), dict(zip(ids, pos))
    return pos


def test_cost_page_input_and_output_per_mtok_per_chip_and_model(site, money_con):
    """Both meters, both bases, for every (chip, model) served; the figures are the mart's; the
    table gives input, output and blended $/Mtok."""
    got = pd.read_csv(site / "data" / "cost-input-output-per-mtok.csv")
    want = money_con.execute("""
        select chip, model,
               sum(input_cost_usd) / sum(input_tokens) * 1e6, sum(output_cost_usd) / sum(output_tokens) * 1e6,
               sum(input_usage_cost_usd) / sum(input_tokens) * 1e6, sum(output_usage_cost_usd) / sum(output_tokens) * 1e6,
               sum(cost_usd) / sum(tokens) * 1e6
        from marts.fct_token_economics where chip is not null and tokens > 0 group by all order by all""").fetchall()
    assert len(want) >= 2
    assert len(got) == 4 * len(want)
    for chip, model, ia, oa, iu, ou, blended in want:
        for meter, basis, v in (("input", "allocation", ia), ("output", "allocation", oa),
                                ("input", "usage", iu), ("output", "usage", ou)):
            row = got[(got.chip == chip) & (got.model == model) & (got.meter == meter) & (got.basis == basis)]
            assert len(row) == 1, (chip, model, meter, basis)
            assert math.isclose(float(row.usd_per_mtok.iloc[0]), v, rel_tol=1e-4), (chip, model, meter, basis)
        assert oa > ia  # decode is sequential: an output token costs more than an input token
    # the table is live (drawn in the browser for the selection: tests/test_site_filters.py compares it with
    # DuckDB there); here its per-day sums, added up over the whole period, give the mart's figures
    doc = (site / "cost.html").read_text(encoding="utf-8")
    live = json.loads(re.search(r'<script type="application/json" id="tw-live">(.*?)</script>', doc, re.S).group(1))
    t = live["cost-input-output-table"]
    assert [c["label"] for c in t["columns"]][2:5] == ["Input USD/Mtok", "Output USD/Mtok", "Blended USD/Mtok"]
    d = pd.DataFrame({k: [v["values"][i] for i in v["codes"]] if isinstance(v, dict) else v
                      for k, v in t["data"].items()})
    sums = d.groupby(["chip", "model"])[["input_cost_usd", "input_tokens", "output_cost_usd", "output_tokens",
                                         "cost_usd", "tokens"]].sum()
    for chip, model, ia, oa, _, _, blended in want:
        r = sums.loc[(chip, model)]
        got_row = [r.input_cost_usd / r.input_tokens * 1e6, r.output_cost_usd / r.output_tokens * 1e6,
                   r.cost_usd / r.tokens * 1e6]
        assert got_row == pytest.approx([ia, oa, blended], rel=1e-6), (chip, model, got_row)

def test_cost_page_margins_per_model_tier_and_vendor(site, money_con):
    got = pd.read_csv(site / "data" / "cost-margin-model-tier-vendor.csv")
    want = money_con.execute("""select model, tier, vendor, sum(revenue_usd), sum(cost_usd), sum(margin_usd)
                                from marts.fct_token_economics where vendor is not null group by all""").fetchall()
    assert len(got) == len(want) and {r[1] for r in want} == {"api", "subscription", "free"}
    for model, tier, vendor, rev, cost, margin in want:
        row = got[(got.model == model) & (got.tier == tier) & (got.vendor == vendor)]
        assert len(row) == 1
        assert math.isclose(float(row.margin_usd.iloc[0]), margin, rel_tol=1e-3, abs_tol=1e-9)
        assert margin == pytest.approx(rev - cost, rel=1e-9, abs=1e-12)
    doc = (site / "cost.html").read_text(encoding="utf-8")
    assert "Break-even input USD/Mtok" in doc
    _order(doc, "cost-input-output-per-mtok", "cost-margin-model-tier-vendor")


def test_forecast_page_shows_coverage_next_to_the_bands(site, money_con):
    """The coverage chart follows the bands chart directly, its data is marts.fct_forecast_coverage,
    and the bands chart's caption quotes each scenario's measured coverage."""
    doc = (site / "forecast.html").read_text(encoding="utf-8")
    bands, cov, scen = _order(doc, "forecast-bands", "forecast-coverage", "forecast-scenarios")
    assert bands < cov < scen
    got = pd.read_csv(site / "data" / "forecast-coverage.csv")
    want = money_con.execute("""select scenario, horizon_days, level_pct, origins, covered, coverage_pct
                                from marts.fct_forecast_coverage where origins > 0""").fetchall()
    assert want and len(got) == len(want)
    for scenario, hz, lv, n, covered, pct in want:
        row = got[(got.scenario == scenario) & (got.horizon_days == hz) & (got.level_pct == lv)]
        assert len(row) == 1 and int(row.origins.iloc[0]) == n and int(row.covered.iloc[0]) == covered
        assert math.isclose(float(row.coverage_pct.iloc[0]), pct, rel_tol=1e-4)
    caption = doc[bands:cov]
    assert "Backtest coverage" in caption
    hz_cap = max(h for (h,) in money_con.execute(
        "select horizon_days from marts.fct_forecast_coverage where origins > 0 and horizon_days <= 7").fetchall())
    for scenario, in money_con.execute("select distinct scenario from marts.fct_forecast_coverage").fetchall():
        p80, p95 = [p for (p,) in money_con.execute(
            """select coverage_pct from marts.fct_forecast_coverage
               where scenario = ? and horizon_days = ? order by level_pct""", [scenario, hz_cap]).fetchall()]
        assert f"{scenario}: 80 % band {p80:.0f} %, 95 % band {p95:.0f} % ({hz_cap} d ahead" in caption, scenario
    # the bands' tooltip carries the coverage stored on each forecast row
    bands_csv = pd.read_csv(site / "data" / "forecast-bands.csv")
    assert bands_csv.loc[bands_csv.kind == "forecast", "coverage80_pct"].notna().any()
    # the backtest table describes the calibrated bands, not a widening factor
    assert "widened so that they match" not in doc and "own past errors" in doc
