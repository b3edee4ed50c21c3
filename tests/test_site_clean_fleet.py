"""The site of a clean simulated fleet, through the real pipeline (conftest's ``tiny_home``: Dagster,
dbt, DuckDB): the Data quality page draws its coverage chart (device x day) even when every cell is
green, and every page draws in headless Chromium with no console error."""
from __future__ import annotations

import re

import pytest

from dashboards.browser import PAGES, Browser, check_page, have_browser

pytestmark = pytest.mark.skipif(not have_browser(), reason="needs selenium, /usr/bin/chromium, /usr/bin/chromedriver")


def test_the_quality_page_of_a_clean_fleet_draws_coverage_per_device_and_day(tiny_home):
    site = tiny_home / "site"
    html = (site / "quality.html").read_text(encoding="utf-8")
    assert 'id="chart-quality-coverage"' in html
    assert not re.search(r"No data yet[^<]*fct_data_quality_daily", html)
    b = Browser()
    try:
        for page in PAGES:
            res = check_page(b, site, page)  # every chart has visible marks, no console error, nothing remote
            if page == "quality":
                assert res["marks"]["chart-quality-coverage"] > 0
                cells = b.driver.execute_script(
                    "return document.querySelectorAll('#chart-quality-coverage g.mark-rect path').length")
                assert cells > 0
    finally:
        b.close()
