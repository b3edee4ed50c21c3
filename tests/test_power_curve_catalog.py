"""The Energy page's power-vs-batch chart: the catalog's dashed curve equals the catalog's numbers
(computed here from the YAML files, not through the code under test) for exactly the (chip, model)
pairs the fleet serves, and the learned curve equals marts.fct_power_model; tiny fleet, real pipeline."""
from __future__ import annotations

import math
import sys
from pathlib import Path

import duckdb
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from dashboards import theme  # noqa: E402
from tests.test_site_build import specs_of  # noqa: E402

CATALOG = REPO / "collectors" / "catalog"
CHART = "energy-power-model-curve"
# each decode bin's first and last batch (bins 1, 2, 3-4, 5-8, ..., 65-128, 129+), written out by hand
EDGES = [1, 2, 3, 4, 5, 8, 9, 16, 17, 32, 33, 64, 65, 128, 129]


def _expected_catalog() -> dict[tuple[str, str, int], float]:
    """(chip, model, batch) -> active W per device above serving idle, from the YAML files alone."""
    fleet = yaml.safe_load((CATALOG / "fleets" / "tiny.yaml").read_text())
    assert "perf" not in fleet and "chips" not in fleet  # else the catalog rows below would not be the fleet's
    chips = yaml.safe_load((CATALOG / "chips.yaml").read_text())["chips"]
    perf = {(r["chip"], r["model"]): r for r in yaml.safe_load((CATALOG / "models.yaml").read_text())["perf"]}
    node_chip = {n["name"]: n["chip"] for n in fleet["nodes"]}
    served = {(node_chip[r["node"]], r["model"]) for r in fleet["replicas"]}
    out = {}
    for chip, model in served:
        c, p = chips[chip], perf[(chip, model)]
        idle = c["idle_power_w"] + c.get("model_loaded_idle_extra_w", 0)
        for b in sorted({e for e in EDGES if e <= p["max_batch"]} | {p["max_batch"]}):
            w = min(c["rated_power_w"], p["decode_power_a_w"] + p["decode_power_c_w"] * math.log(b))
            out[(chip, model, b)] = max(w - idle, 0.0)
    return out


def _chart_rows(site: Path) -> list[dict]:
    spec = specs_of(site / "energy.html")[CHART]["spec"]
    return spec["datasets"][spec["data"]["name"]]


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-3, abs_tol=0.05)  # the page rounds to 4 significant digits


def test_catalog_curve_on_the_page_equals_the_catalog_for_the_served_pairs(tiny_home):
    rows = _chart_rows(tiny_home / "site")
    got = {(r["chip"], r["model"], int(r["batch"])): r["active_power_w"] for r in rows if r["curve"] == "catalog"}
    want = _expected_catalog()
    assert set(got) == set(want)  # every served pair, every bin edge up to its max batch, nothing else
    assert len({(c, m) for c, m, _ in want}) == 3
    bad = {k: (got[k], want[k]) for k in want if not _close(got[k], want[k])}
    assert not bad


def test_learned_curve_on_the_page_equals_the_mart(tiny_home):
    rows = _chart_rows(tiny_home / "site")
    got = {(r["chip"], r["model"], int(r["batch"])): r["active_power_w"] for r in rows if r["curve"] == "learned"}
    con = duckdb.connect(str(tiny_home / "warehouse.duckdb"), read_only=True)
    try:
        mart = {(c, m, int(b)): w for c, m, b, w in con.execute("""
            select chip, model, batch_lo, median(active_power_w) from marts.fct_power_model
            where learned and feature <> 'prefill' and observed group by all""").fetchall()}
        n_catalog = con.execute("select count(*) from ref.catalog_power_curve").fetchone()[0]
        n_served = con.execute("select count(*) from marts.fct_power_curve_catalog").fetchone()[0]
    finally:
        con.close()
    assert mart, "the tiny fleet learned no power model: the comparison would be empty"
    assert set(got) == set(mart)
    assert all(_close(got[k], mart[k]) for k in mart)
    assert n_catalog > n_served  # the ref table holds every serving row; the mart keeps the served ones


def test_the_chart_legend_names_learned_and_catalog(tiny_home):
    spec = specs_of(tiny_home / "site" / "energy.html")[CHART]["spec"]
    enc = spec["encoding"]
    dash = enc["strokeDash"]
    assert dash["field"] == "curve" and dash["scale"]["domain"] == ["learned", "catalog"]
    assert dash["scale"]["range"][0] != dash["scale"]["range"][1]  # solid and dashed
    assert enc["color"]["field"] == "chip" and enc["shape"]["field"] == "model"  # one colour per chip either curve
    assert spec["width"] == theme.FULL_W - 40  # the full-width card: title, subtitle and legends fit


@pytest.mark.parametrize("field", ["fleet_source"])
def test_a_home_whose_sim_json_lacks_the_fleet_says_which_field(tmp_path, field):
    from warehouse.catalog_curve import home_fleet

    meta = tmp_path / "sim.json"
    meta.write_text('{"fleet": "tiny"}')
    with pytest.raises(ValueError, match=f"sim.json: field '{field}'"):
        home_fleet(meta)


FITS = """
const fig = document.getElementById('fig-' + arguments[0]);
const box = fig.getBoundingClientRect();
let worst = 0;
fig.querySelectorAll('svg text').forEach(t => {
  const r = t.getBoundingClientRect();
  if (r.width > 0) worst = Math.max(worst, r.right - box.right, box.left - r.left);
});
return {scroll: fig.scrollWidth - fig.clientWidth, text_out_px: worst,
        texts: fig.querySelectorAll('svg text').length};
"""


def test_the_chart_title_subtitle_and_legends_fit_in_their_card(tiny_home):
    """The chart was cut off at the card edge (docs/screenshots/energy.png before): in headless
    Chromium at the site's width, nothing of it overflows its card and every text lies inside."""
    from dashboards.browser import Browser, check_page, have_browser

    if not have_browser():
        import os
        if os.environ.get("TOKENWATT_REQUIRE_BROWSER"):
            pytest.fail("TOKENWATT_REQUIRE_BROWSER is set but Chromium/chromedriver/selenium are missing")
        pytest.skip("no headless Chromium here")
    browser = Browser()
    try:
        check_page(browser, tiny_home / "site", "energy")
        fit = browser.driver.execute_script(FITS, CHART)
    finally:
        browser.close()
    assert fit["texts"] > 10  # title, subtitle, axes and the three legends were drawn
    assert fit["scroll"] <= 0 and fit["text_out_px"] <= 0, fit
