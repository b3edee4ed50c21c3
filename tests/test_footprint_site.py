"""The Footprint page: drawn from the real marts of the tiny home, names escaped, no data handled."""
from __future__ import annotations

import json
import re
import shutil

import duckdb
import pytest

from dashboards.site import build_site
from tests.site_fixture import build_fixture

pytestmark = pytest.mark.slow


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_footprint_page_shows_the_medians_beside_the_published_figures(tiny_home):
    doc = (tiny_home / "site" / "footprint.html").read_text(encoding="utf-8")
    con = duckdb.connect(str(tiny_home / "warehouse.duckdb"), read_only=True)
    wh, g, ml, acc_share = con.execute("""select median(full_wh), median(full_market_gco2e), median(full_water_ml),
                                                 sum(accelerator_j) / sum(full_j) * 100
                                          from marts.fct_request_footprint""").fetchone()
    con.close()
    text = _text(doc)
    assert wh > 0 and g > 0 and ml > 0
    assert f"Energy, full boundary (Wh) {wh:.3f} 0.24" in text
    assert f"Carbon, market-based (gCO2e) {g:.3f} 0.03" in text
    assert f"Water, on-site (mL) {ml:.3f} 0.26" in text
    assert f"Share: accelerator (%) {acc_share:.1f} 58" in text
    assert "arXiv 2508.15734" in text
    assert "footprint-boundary-per-chip-model" in doc and "footprint-carbon-per-day-site" in doc
    assert 'href="footprint.html"' in (tiny_home / "site" / "index.html").read_text(encoding="utf-8")
    assert "could not be drawn" not in text


def test_names_from_the_data_are_escaped(tiny_home, tmp_path):
    db = tmp_path / "warehouse.duckdb"
    shutil.copy(tiny_home / "warehouse.duckdb", db)
    evil = '<img src=x onerror="alert(1)">'
    con = duckdb.connect(str(db))
    con.execute("update marts.fct_footprint_daily set model = ? where model = 'llama-8b'", [evil])
    con.execute("update marts.fct_footprint_node_daily set site = ?", [evil + "-site"])
    con.close()
    res = build_site(db, tmp_path / "site", images=False)
    assert not res["errors"], res["errors"]
    doc = (tmp_path / "site" / "footprint.html").read_text(encoding="utf-8")
    assert evil not in doc
    # the breakdown table is live: the name is data in #tw-live (site.js sets it with textContent)
    live = json.loads(re.search(r'<script type="application/json" id="tw-live">(.*?)</script>', doc, re.S).group(1))
    assert "\\u003cimg src=x onerror=" in doc
    assert evil in live["footprint-breakdown-table"]["data"]["model"]["values"]


def test_a_warehouse_without_footprint_marts_says_how_to_fill_them(tmp_path):
    db = build_fixture(tmp_path / "warehouse.duckdb")
    res = build_site(db, tmp_path / "site", images=False)
    assert not res["errors"], res["errors"]
    text = _text((tmp_path / "site" / "footprint.html").read_text(encoding="utf-8"))
    assert "No data yet: table marts.fct_request_footprint does not exist" in text
    assert "No data yet: table marts.fct_footprint_node_daily does not exist" in text


def test_footprint_page_draws_in_headless_chromium(tiny_home, tmp_path):
    """The page of the tiny home in real headless Chromium, offline: every chart has visible marks,
    the console stays clean, nothing leaves the machine."""
    from tests.test_site_browser import Browser, _have_browser, check_page

    if not _have_browser():
        import os
        if os.environ.get("TOKENWATT_REQUIRE_BROWSER") == "1":
            raise RuntimeError("TOKENWATT_REQUIRE_BROWSER=1 but the browser is missing")
        pytest.skip("needs selenium, /usr/bin/chromium, /usr/bin/chromedriver")
    b = Browser()
    try:
        res = check_page(b, tiny_home / "site", "footprint", [tmp_path])
    finally:
        b.close()
    assert set(res["marks"]) == {"chart-footprint-boundary-per-chip-model", "chart-footprint-carbon-per-day-site"}
    assert (tmp_path / "footprint.png").stat().st_size > 10_000
