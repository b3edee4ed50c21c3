"""The site's filters in a real browser: a chip and a date range selected on the overview follow the
reader to every page (URL hash), and every card, table and filtered chart changes to that selection;
the cards and tables match DuckDB's figures for the same selection.

Uses tests/test_site_browser.py's headless Chromium driver (skipped where it is missing, an error
under TOKENWATT_REQUIRE_BROWSER=1).
"""
from __future__ import annotations

import math
import sys
from pathlib import Path

import duckdb
import pytest

if str(Path(__file__).resolve().parents[1]) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.site_filters_expect import (CHIP, FROM, TO, VENDOR, _add_footprint_power_completeness,  # noqa: E402
                                       _add_token_economics, _expect_completeness, _expect_devices, _expect_footprint,
                                       _expect_idle, _expect_overview, _expect_power_model, _expect_resets,
                                       _expect_skew, _expect_split, _expect_workloads)
from tests.test_site_browser import PAGES as BROWSER_PAGES  # noqa: E402
from tests.test_site_browser import Browser, _have_browser, problems, remote  # noqa: E402

#: every page of the site: the browser test's and the footprint page
PAGES = [*BROWSER_PAGES, *(p for p in ("footprint",) if p not in BROWSER_PAGES)]

pytestmark = pytest.mark.skipif(not _have_browser(), reason="needs selenium, /usr/bin/chromium, /usr/bin/chromedriver")

TABLE = """
const box = document.getElementById('live-' + arguments[0]);
if (!box) return null;
const keys = [...box.querySelectorAll('thead th')].map(th => th.dataset.key);
return [...box.querySelectorAll('tbody tr')].map(tr => {
  const r = {};
  [...tr.children].forEach((td, i) => { r[keys[i]] = td.hasAttribute('data-value') ?
      (td.dataset.value === '' ? null : Number(td.dataset.value)) : td.textContent; });
  return r;
});
"""
#: what a chart shows: the text of its marks and axes, and the fill and position of every mark
SIGNATURE = """const out = {};
document.querySelectorAll('div.vis').forEach(el => {
  const svg = el.querySelector('svg');
  out[el.id] = svg ? svg.textContent + '|' + [...svg.querySelectorAll('g.role-mark > path, g.role-mark > rect')]
      .map(p => (p.getAttribute('fill') || '') + (p.getAttribute('d') || '').slice(0, 40)
               + (p.getAttribute('transform') || '')).join(';') : '';
});
return out;"""
LIVE_TEXT = "return document.getElementById('live-' + arguments[0]).textContent"
CARDS = """return Object.fromEntries([...document.querySelectorAll('#live-overview-cards .kpi')].map(
    k => [k.dataset.card, {value: k.dataset.value === '' ? null : Number(k.dataset.value),
                           label: k.querySelector('.kpi-label').textContent}]));"""
SELECT = """
const [chip, from, to] = arguments;
document.getElementById('tw-chip').value = chip;
document.getElementById('tw-from').value = from;
const t = document.getElementById('tw-to'); t.value = to;
t.dispatchEvent(new Event('change'));
return Promise.all(Object.values(TW.views).map(v => v.runAsync())).then(() => location.hash);
"""


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    from dashboards.site import build_site
    from tests.site_fixture import build_fixture

    d = tmp_path_factory.mktemp("site-filters")
    db = build_fixture(d / "warehouse.duckdb", n_requests=6000, days=8)
    _add_token_economics(db)
    _add_footprint_power_completeness(db)
    res = build_site(db, d / "site", images=False)
    assert not res["errors"], res["errors"]
    return {"db": db, "site": Path(res["out_dir"])}


def _check_table(browser, name: str, keys: tuple, exp: dict) -> None:
    """The live table ``name`` has exactly the expected rows (by ``keys``), every figure as in DuckDB."""
    rows = browser.driver.execute_script(TABLE, name)
    got = {tuple(r[k] for k in keys): r for r in rows}
    assert exp and set(got) == set(exp), (name, sorted(got), sorted(exp))
    for key, e in exp.items():
        for k, v in e.items():
            assert got[key][k] == v if isinstance(v, str) else _close(got[key][k], v), (name, key, k, got[key][k], v)


@pytest.fixture(scope="module")
def browser():
    b = Browser()
    yield b
    b.close()


def _close(a, b, rel=1e-8) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(float(a), float(b), rel_tol=rel, abs_tol=1e-12)


def _open(browser: Browser, url: str) -> None:
    browser.open(url)


def test_chip_and_dates_follow_to_every_page_and_match_duckdb(built, browser):
    site, db = built["site"], built["db"]
    # the unfiltered state of every page, from a fresh load without a hash
    browser.open((site / "index.html").as_uri())
    browser.driver.execute_script("sessionStorage.clear()")
    before: dict[str, dict] = {}
    for page in PAGES:
        browser.open((site / f"{page}.html").as_uri())
        before[page] = {"marks": browser.marks(), "sig": browser.driver.execute_script(SIGNATURE),
                        "filtered": browser.driver.execute_script(
                            "return Object.keys(TW.filters).filter(k => TW.filters[k])"),
                        "live": {n: browser.driver.execute_script(LIVE_TEXT, n)
                                 for n in browser.driver.execute_script("return Object.keys(TW.live)")}}
    browser.open((site / "index.html").as_uri())
    cards_before = browser.driver.execute_script(CARDS)
    hash_ = browser.driver.execute_script(SELECT, CHIP, FROM, TO)
    assert f"chip={CHIP}" in hash_ and f"from={FROM}" in hash_ and f"to={TO}" in hash_, hash_

    # overview: cards and tables for the selection, equal to DuckDB's
    exp_cards, exp_vendor = _expect_overview(db)
    cards = browser.driver.execute_script(CARDS)
    assert set(cards) >= {"tokens", "energy_kwh", "usd_per_mtok", "usage_usd_per_mtok", "revenue_usd",
                          "operating_loss_usd"}
    for k, v in cards.items():
        assert _close(v["value"], exp_cards[k]), (k, v, exp_cards[k])
        assert not _close(v["value"], cards_before[k]["value"]), f"card {k} did not change"
    assert cards["operating_loss_usd"]["label"] == ("Operating profit" if exp_cards["operating_loss_usd"] < 0
                                                    else "Operating loss")
    chips = browser.driver.execute_script(TABLE, "overview-chips")
    assert [r["chip"] for r in chips] == [CHIP, "Fleet"], chips
    for r in chips:
        for k in ("tokens", "requests", "j_per_token", "usd_per_mtok", "usage_usd_per_mtok", "revenue_usd",
                  "operating_loss_usd"):
            assert _close(r[k], exp_cards[k]), (r["chip"], k, r[k], exp_cards[k])
    vendors = browser.driver.execute_script(TABLE, "overview-vendors")
    assert [r["vendor"] for r in vendors] == [VENDOR, "Fleet"], vendors
    for k, v in exp_vendor.items():
        assert _close(vendors[0][k], v), (k, vendors[0][k], v)
    jpt = browser.driver.execute_script(
        "return [...document.querySelectorAll('#chart-overview-j-per-token g.role-mark.mark-text text')].map(t => t.textContent)")
    con = duckdb.connect(str(db), read_only=True)
    exp_jpt = sorted(f"{j:.2f}" for (j,) in con.execute(
        """select sum(energy_kwh) * 3.6e6 / sum(tokens) from marts.fct_cost_per_token_daily
           where chip = ? and date between ? and ? group by model""", [CHIP, FROM, TO]).fetchall())
    con.close()
    assert sorted(jpt) == exp_jpt, (jpt, exp_jpt)

    # every page: reached through the navigation, same selection, every filtered chart and live block changed
    for page in PAGES:
        browser.driver.find_element("css selector", f'header nav a[href^="{page}.html"]').click()
        browser.wait_ready()
        state = browser.driver.execute_script("return TW.state")
        assert (state["chip"], state["from"], state["to"]) == (CHIP, FROM, TO), (page, state)
        marks, sig = browser.marks(), browser.driver.execute_script(SIGNATURE)
        for name in before[page]["filtered"]:
            k = f"chart-{name}"
            assert marks[k] > 0, (page, name, marks[k])
            assert (marks[k], sig[k]) != (before[page]["marks"][k], before[page]["sig"][k]), (page, name, "unchanged")
        for name, text in before[page]["live"].items():
            now = browser.driver.execute_script(LIVE_TEXT, name)
            assert now and now != text, f"{page}: {name} did not change"
        console, urls = browser.drain()
        assert not problems(console), (page, problems(console))
        assert not remote(urls), (page, remote(urls))

        if page == "energy":  # idle power per chip for the selected chip and dates, as in DuckDB
            exp = _expect_idle(db)
            rows = browser.driver.execute_script(TABLE, "energy-idle")
            got = {(r["chip"], r["idle_source"]): r for r in rows}
            assert exp and set(got) == set(exp), (got, exp)
            for key, e in exp.items():
                for k, v in e.items():
                    assert _close(got[key][k], v), (key, k, got[key][k], v)
        if page == "fleet":  # per device of the selected chip, over the selected dates, as in DuckDB
            exp = _expect_devices(db)
            got = {r["device_id"]: r for r in browser.driver.execute_script(TABLE, "fleet-devices")}
            assert exp and set(got) == set(exp), (sorted(got), sorted(exp))
            for dev, e in exp.items():
                for k, v in e.items():
                    assert got[dev][k] == v if k == "chip" else _close(got[dev][k], v), (dev, k, got[dev][k], v)
        if page == "cost":  # input vs output tokens per chip and model
            _check_table(browser, "cost-input-output-table", ("chip", "model"), _expect_split(db))
        if page == "quality":  # counter resets per chip, clock skew per node and day, server counters per replica
            _check_table(browser, "quality-counter-resets-table", ("chip",), _expect_resets(db))
            _check_table(browser, "quality-clock-skew", ("date", "node"), _expect_skew(db))
            _check_table(browser, "quality-server-completeness-table", ("replica", "node"), _expect_completeness(db))
        if page == "energy":  # the learned power model per chip and model
            _check_table(browser, "energy-power-model-table", ("chip", "model"), _expect_power_model(db))
        if page == "footprint":  # energy, carbon and water per request by boundary, per chip and model
            _check_table(browser, "footprint-breakdown-table", ("chip", "model"), _expect_footprint(db))
        if page == "cost":  # the workload table: chip x model x task x tier of the selection, as in DuckDB
            exp = _expect_workloads(db)
            rows = browser.driver.execute_script(TABLE, "cost-workload-table")
            got = {(r["chip"], r["model"], r["task"], r["tier"]): r for r in rows}
            assert set(got) == set(exp), (set(got) ^ set(exp))
            for key, e in exp.items():
                for k, v in e.items():
                    assert _close(got[key][k], v), (key, k, got[key][k], v)
            # sorted by allocation $/Mtok, most expensive first; a click on "Tokens" sorts by tokens
            vals = [r["usd_per_mtok"] for r in rows]
            assert vals == sorted(vals, reverse=True)
            browser.driver.find_element("css selector", '#live-cost-workload-table th[data-key="tokens"]').click()
            toks = [r["tokens"] for r in browser.driver.execute_script(TABLE, "cost-workload-table")]
            assert toks == sorted(toks, reverse=True) and toks != [r["tokens"] for r in rows]
            csv = browser.driver.execute_script("return TW.csv('cost-workload-table')").splitlines()
            assert csv[0].split(",")[:4] == ["chip", "model", "task", "tier"] and len(csv) == len(rows) + 1
    # the selection survives a reload of a page opened from its address
    browser.driver.refresh()
    browser.wait_ready()
    assert browser.driver.execute_script("return document.getElementById('tw-chip').value") == CHIP


def test_no_horizontal_scrollbar_in_any_card(built, browser):
    for page in PAGES:
        browser.open((built["site"] / f"{page}.html").as_uri())
        wide = browser.driver.execute_script("""
            return [...document.querySelectorAll('figure.chart, .htmlblock')]
              .filter(e => e.scrollWidth > e.clientWidth + 1).map(e => e.id || e.className)""")
        assert not wide, (page, wide)


#: every chart, live block and static table of a page, with what it says it does not follow
BLOCKS = """
const out = {};
document.querySelectorAll('figure.chart, div.htmlblock').forEach(el => {
  const live = el.classList.contains('live');
  const key = el.id || ('html-' + Object.keys(out).length);
  const wrap = live && el.parentElement.classList.contains('live-wrap') ? el.parentElement : el;
  const scope = wrap.querySelector(':scope > p.scope');
  out[key] = {kind: el.tagName === 'FIGURE' ? 'chart' : (live ? 'live' : 'html'),
              ignores: el.hasAttribute('data-ignores') ? el.dataset.ignores.split(' ').filter(Boolean) : null,
              scope: scope ? scope.textContent : null,
              scope_visible: scope ? scope.getBoundingClientRect().height > 0 : false,
              text: live ? el.textContent : null};
});
return out;"""
SET = """
const [chip, model, from, to] = arguments;
const set = (id, v) => { const e = document.getElementById(id); if (e && v !== null) e.value = v; };
set('tw-chip', chip); set('tw-model', model); set('tw-from', from); set('tw-to', to);
return TW.apply().then(() => Promise.all(Object.values(TW.views).map(v => v.runAsync())))
  .then(() => new Promise(r => requestAnimationFrame(() => r(location.hash))));
"""
WORDS = {"dates": "whole period", "chip": "all chips", "model": "all models"}


def test_every_block_follows_each_filter_or_says_plainly_that_it_does_not(built, browser):
    """One filter at a time (date range, then model, then chip): every chart and live block that does
    not say "does not follow the ... filter" changed; every one that says so shows that line; every
    static table says it is a whole-period, whole-fleet figure."""
    site = built["site"]
    browser.open((site / "index.html").as_uri())
    browser.driver.execute_script("sessionStorage.clear()")
    selections = {"dates": (None, None, FROM, TO), "model": (None, "llama-8b", None, None),
                  "chip": (CHIP, None, None, None)}
    checked = {"follow": 0, "ignore": 0}
    for page in PAGES:
        browser.open((site / f"{page}.html").as_uri())
        has_bar = browser.driver.execute_script("return !!document.getElementById('tw-chip')")
        blocks = browser.driver.execute_script(BLOCKS)
        if not has_bar:  # the forecast: no filter bar, nothing to follow, nothing to excuse
            assert all(not b["ignores"] and not b["scope"] for b in blocks.values()), (page, blocks)
            continue
        undeclared = [k for k, b in blocks.items() if b["ignores"] is None and b["kind"] != "html"]
        assert not undeclared, (page, undeclared)
        for k, b in blocks.items():
            if b["kind"] == "html" and b["ignores"] is not None:  # a static table: whole period, whole fleet
                assert set(b["ignores"]) == {"dates", "chip", "model"}, (page, k, b)
            if b["ignores"]:
                assert b["scope_visible"] and "does not follow" in b["scope"], (page, k, b)
                for f in b["ignores"]:
                    assert WORDS[f] in b["scope"].lower(), (page, k, f, b["scope"])
        before_sig = browser.driver.execute_script(SIGNATURE)
        for f, sel in selections.items():
            browser.driver.execute_script(SET, *sel)
            after_sig, after = browser.driver.execute_script(SIGNATURE), browser.driver.execute_script(BLOCKS)
            for k, b in blocks.items():
                if b["kind"] == "html" or f in (b["ignores"] or []):
                    checked["ignore"] += b["kind"] != "html"
                    continue
                if b["kind"] == "chart":
                    vis = "chart-" + k.removeprefix("fig-")
                    assert after_sig[vis] != before_sig[vis], f"{page}: {k} did not follow the {f} filter"
                else:
                    assert after[k]["text"] != b["text"], f"{page}: {k} did not follow the {f} filter"
                checked["follow"] += 1
            browser.driver.execute_script(SET, "all", "all", "0000-01-01", "9999-12-31")
        console, urls = browser.drain()
        assert not problems(console), (page, problems(console))
    assert checked["follow"] > 40 and checked["ignore"] > 5, checked


def test_forecast_coverage_too_short_is_one_line_not_a_table_of_zeros(built, tmp_path):
    """A history too short for any backtest origin: one plain line, not rows of "– / 0/0"."""
    import shutil

    from dashboards.site import build_site

    db = tmp_path / "w.duckdb"
    shutil.copy(built["db"], db)
    con = duckdb.connect(str(db))
    con.execute("""create table marts.fct_forecast_coverage as
                   select s.scenario, h.horizon_days, l.level_pct, 0 as origins, 0 as covered,
                          null::double as coverage_pct
                   from (values ('base'), ('growth')) s(scenario), (values (1), (7), (30)) h(horizon_days),
                        (values (80), (95)) l(level_pct)""")
    con.close()
    res = build_site(db, tmp_path / "site", images=False)
    assert not res["errors"], res["errors"]
    doc = (Path(res["out_dir"]) / "forecast.html").read_text(encoding="utf-8")
    sec = doc[doc.index("Do the bands hold?"):]
    sec = sec[:sec.find("</section>")]
    assert "too short for a rolling-origin backtest at any horizon" in sec
    assert "0/0" not in sec and "<table" not in sec
