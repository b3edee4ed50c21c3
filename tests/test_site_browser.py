"""The dashboard site in a real browser: headless Chromium opens every page from file://.

Checks per page: every chart drew marks (SVG elements inside the chart's data-mark groups), the
console has no errors or Vega warnings, and no request left the machine (every URL Chromium
requested is file:, data:, blob: or browser-internal). A screenshot per page goes to a temp dir.

Needs Debian's ``chromium`` and ``chromium-driver`` (/usr/bin/chromium, /usr/bin/chromedriver) and
the ``selenium`` package (test extra); skipped when they are missing. Chromium is driven over
chromedriver (the DevTools protocol); nothing is downloaded.

The driver (:class:`dashboards.browser.Browser`) and the page check are in dashboards/browser.py, shared
with ``python -m dashboards.screenshots`` (docs/screenshots/). Also runnable by hand on a built site:
``python -m tests.test_site_browser SITE_DIR SHOTS_DIR``.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

if str(Path(__file__).resolve().parents[1]) not in sys.path:  # "from tests.site_fixture import ..." under any runner
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

REPO = Path(__file__).resolve().parents[1]

from dashboards.browser import (CHROMEDRIVER, CHROMIUM, GEOMETRY, LOCAL_SCHEMES, PAGES, WIDTH,  # noqa: E402,F401
                                Browser, check_page, problems, remote)
from dashboards.browser import have_browser as _have_browser  # noqa: E402


# ------------------------------------------------------------------------------------------------ tests

if os.environ.get("TOKENWATT_REQUIRE_BROWSER") == "1" and not _have_browser():
    # `make test` and CI set this: a missing browser is a failure there, never a silent skip
    raise RuntimeError("TOKENWATT_REQUIRE_BROWSER=1 but selenium, /usr/bin/chromium or /usr/bin/chromedriver is missing")
pytestmark = pytest.mark.skipif(not _have_browser(), reason="needs selenium, /usr/bin/chromium, /usr/bin/chromedriver")


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    from dashboards.site import build_site
    from tests.site_fixture import build_fixture

    d = tmp_path_factory.mktemp("site")
    db = build_fixture(d / "warehouse.duckdb")
    res = build_site(db, d / "site")
    assert not res["errors"], res["errors"]
    return Path(res["out_dir"])


@pytest.fixture(scope="module")
def empty_site(tmp_path_factory) -> Path:
    from dashboards.site import build_site
    from tests.site_fixture import TABLES, build_fixture

    d = tmp_path_factory.mktemp("site-empty")
    db = build_fixture(d / "warehouse.duckdb", n_requests=500,
                       missing={"attribution.quality", "marts.fct_loss_forecast"},
                       empty={"raw.quarantine", "marts.fct_data_quality_daily"})
    res = build_site(db, d / "site")
    assert not res["errors"], res["errors"]
    assert TABLES  # the fixture's table list is the contract's
    return Path(res["out_dir"])


@pytest.fixture(scope="module")
def one_day_site(tmp_path_factory) -> Path:
    """The warehouse of a first day: every daily series has one point, the forecast has no intervals."""
    from dashboards.site import build_site
    from tests.site_fixture import build_fixture

    d = tmp_path_factory.mktemp("site-1day")
    db = build_fixture(d / "warehouse.duckdb", n_requests=3000, days=1)
    res = build_site(db, d / "site", images=False)
    assert not res["errors"], res["errors"]
    return Path(res["out_dir"])


@pytest.fixture(scope="module")
def browser():
    b = Browser()
    yield b
    b.close()


@pytest.fixture(scope="module")
def shot_dirs(tmp_path_factory) -> list[Path]:
    """A temp folder (docs/screenshots/ is refreshed by ``python -m dashboards.screenshots``)."""
    return [tmp_path_factory.mktemp("screenshots")]


@pytest.mark.parametrize("page", PAGES)
def test_page_renders_offline(site, browser, shot_dirs, page):
    res = check_page(browser, site, page, shot_dirs)
    assert len(res["marks"]) >= 3, f"{page}: only {len(res['marks'])} charts"
    for d in shot_dirs:
        png = Path(d) / f"{page}.png"
        assert png.stat().st_size > 10_000
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


MARK_FILLS = """
const out = {};
for (const [name, f] of Object.entries(TW.filters)) {
  if (!f) continue;
  const el = document.getElementById('chart-' + name);
  const fills = new Set();
  el.querySelectorAll('g.role-mark > path, g.role-mark > line').forEach(p => {
    for (const a of ['fill', 'stroke']) { const v = p.getAttribute(a); if (v) fills.add(v.toUpperCase()); }
  });
  out[name] = [...fills];
}
return out;
"""


def select_chip(browser: Browser, chip: str) -> None:
    browser.driver.execute_script("""
        const s = document.getElementById('tw-chip'); s.value = arguments[0];
        s.dispatchEvent(new Event('change'));""", chip)
    browser.driver.execute_script(
        "return Promise.all(Object.values(TW.views).map(v => v.runAsync())).then(() => 1)")


@pytest.mark.parametrize("page", ["index", "cost", "energy"])
def test_chip_selector_filters_linked_charts(site, browser, page):
    from dashboards.theme import CHIP_COLORS

    browser.open((site / f"{page}.html").as_uri())
    before = browser.marks()
    n_filtered = browser.driver.execute_script("return Object.values(TW.filters).filter(Boolean).length")
    assert n_filtered >= 2
    try:
        select_chip(browser, "custom-asic")
        after = browser.marks()
        fills = browser.driver.execute_script(MARK_FILLS)
    finally:
        select_chip(browser, "all")
        browser.driver.execute_script("try { sessionStorage.removeItem('tw-chip'); } catch (e) {}")
    console, urls = browser.drain()
    assert not problems(console), problems(console)
    assert not remote(urls)
    assert all(v > 0 for v in after.values()), after
    assert sum(after.values()) < sum(before.values())
    others = {CHIP_COLORS["nvidia-h100-sxm"].upper(), CHIP_COLORS["amd-mi300x"].upper()}
    blue = CHIP_COLORS["custom-asic"].upper()
    assert not {n: sorted(set(f) & others) for n, f in fills.items() if set(f) & others}
    assert any(blue in f for f in fills.values())


@pytest.mark.parametrize("page", PAGES)
def test_page_without_data_shows_notes(empty_site, browser, page):
    url = (empty_site / f"{page}.html").as_uri()
    browser.open(url)
    console, urls = browser.drain()
    assert not problems(console), problems(console)
    assert not remote(urls)
    text = browser.driver.find_element("tag name", "main").text
    if page == "forecast":
        assert "No data yet" in text and "fct_loss_forecast" in text
    if page == "energy":
        assert "tokenwatt evaluate" in text
    marks = browser.marks()
    assert all(v > 0 for v in marks.values()), marks


#: the daily time series that drew nothing on a one-day warehouse (a Vega error on an "hour" tick
#: interval stopped each view), per page; each must be on the page and draw marks
ONE_DAY_CHARTS = {
    "index": ["overview-pnl-daily", "overview-tokens-daily", "overview-loss-by-vendor"],
    "energy": ["energy-unused-daily"],
    "cost": ["cost-daily-by-vendor", "cost-per-mtok-daily"],
    "fleet": ["fleet-heatmaps", "fleet-energy-daily"],
    "forecast": ["forecast-bands", "forecast-scenarios"],
    "quality": ["quality-quarantine-daily", "quality-counter-resets-daily"],
}


@pytest.mark.parametrize("page", PAGES)
def test_one_day_site_draws_every_chart(one_day_site, browser, shot_dirs, page):
    """One day of data: every chart has visible marks and the console stays clean (no Vega errors)."""
    res = check_page(browser, one_day_site, page, [Path(shot_dirs[0]) / "one-day"])
    for name in ONE_DAY_CHARTS[page]:
        assert res["marks"].get(f"chart-{name}", 0) > 0, (page, name, res["marks"])
    text = browser.driver.find_element("tag name", "main").text
    if page == "forecast":  # no bands to draw: the page says why instead of promising them
        assert "No prediction intervals yet" in text
    if page == "forecast":  # its time axes run over the forecast horizon, not the one day
        return
    # a single day is labelled once, with its year, not as the span between two day ticks
    labels = browser.driver.execute_script(
        "return [...document.querySelectorAll('g.role-axis-label text')].map(t => t.textContent)")
    assert "01 May 2025" in labels, (page, sorted(set(labels)))
    if page != "fleet":  # the hourly heatmap rightly ends at 02 May 00:00
        assert not [lab for lab in labels if lab.startswith("02 May")], (page, sorted(set(labels)))


if __name__ == "__main__":  # screenshots of a built site, for a look by hand
    site_dir, out = Path(sys.argv[1]), Path(sys.argv[2])
    b = Browser()
    try:
        for p in PAGES:
            try:
                r = check_page(b, site_dir, p, [out])
                print(p, "ok", sum(r["marks"].values()), "marks in", len(r["marks"]), "charts")
            except AssertionError as e:
                print(p, "FAIL", e)
    finally:
        b.close()
