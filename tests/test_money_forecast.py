"""Loss forecast and fleet-scale projection: table contract, intervals, horizon, scenarios,
backtest, fallbacks on short history, scenario-file validation."""
from __future__ import annotations

import copy
import datetime as dt
from dataclasses import replace
import json
import math

import duckdb
import numpy as np
import pytest
import yaml

from warehouse.money.forecast import horizon
from warehouse.money.models import forecast_series
from warehouse.money.scenarios import SCENARIOS_FILE, ForecastConfig, ScenarioError, load_scenarios


CFG, SCENARIOS, SCALE = load_scenarios()
NAMES = [s.name for s in SCENARIOS]


@pytest.fixture(scope="module")
def con(money_con):
    return money_con  # tests/conftest.py: the shared money warehouse


def _rows(con, sql, params=()):
    cur = con.execute(sql, list(params))
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r)) for r in cur.fetchall()]


def test_contract_columns(con):
    cols = {r[0] for r in con.execute("describe marts.fct_loss_forecast").fetchall()}
    assert {"scenario", "grain", "period_start", "kind", "loss_usd", "lo80_usd", "hi80_usd", "lo95_usd", "hi95_usd",
            "backtest_mape", "model"} <= cols  # docs/marts.md
    types = dict((r[0], r[1]) for r in con.execute("describe marts.fct_loss_forecast").fetchall())
    assert types["period_start"] == "DATE"


def test_every_scenario_has_mean_both_intervals_and_backtest(con):
    got = _rows(con, """select scenario, grain, count(*) as n,
                               count(*) filter (where loss_usd is null) as no_mean,
                               count(*) filter (where lo80_usd is null or hi80_usd is null
                                                 or lo95_usd is null or hi95_usd is null) as no_interval,
                               count(*) filter (where backtest_mape is null or not isfinite(backtest_mape)) as no_backtest,
                               min(model) as model
                        from marts.fct_loss_forecast where kind = 'forecast' group by all""")
    seen = {(r["scenario"], r["grain"]) for r in got}
    assert seen == {(s, g) for s in NAMES for g in ("day", "month")}
    for r in got:
        assert r["no_mean"] == 0 and r["no_interval"] == 0 and r["no_backtest"] == 0, r
        assert r["model"], r


def test_intervals_nest(con):
    bad = con.execute("""select count(*) from marts.fct_loss_forecast where kind = 'forecast' and not (
        lo95_usd <= lo80_usd and lo80_usd <= loss_usd and loss_usd <= hi80_usd and hi80_usd <= hi95_usd)""").fetchone()[0]
    assert bad == 0
    # and they widen with the horizon (the 95 % band of the last day is wider than of the first)
    for s in NAMES:
        w = con.execute("""select hi95_usd - lo95_usd from marts.fct_loss_forecast
                           where scenario = ? and grain = 'day' and kind = 'forecast' order by period_start""",
                        [s]).fetchall()
        assert w[-1][0] > w[0][0] > 0


def test_history_plus_forecast_cover_the_horizon(con):
    pnl = con.execute("""select min(date), max(date), count(*) from marts.fct_pnl_daily where vendor = 'all'""").fetchone()
    first, last, n = pnl
    days, months = horizon(last, CFG)
    assert len(days) >= 90 and len(months) == 12
    for s in NAMES:
        rows = con.execute("""select period_start, kind from marts.fct_loss_forecast
                              where scenario = ? and grain = 'day' order by period_start""", [s]).fetchall()
        dates = [r[0] for r in rows]
        assert dates[0] == first and dates[-1] == days[-1]
        assert dates == [first + dt.timedelta(days=i) for i in range((days[-1] - first).days + 1)]  # no gap
        kinds = [r[1] for r in rows]
        assert kinds == ["history"] * n + ["forecast"] * len(days)
        m = con.execute("""select period_start, kind, days, forecast_days from marts.fct_loss_forecast
                           where scenario = ? and grain = 'month' order by period_start""", [s]).fetchall()
        fc_months = [r[0] for r in m if r[1] == "forecast"]
        assert fc_months == months
        assert sum(r[2] for r in m) == len(dates)  # the months partition the days


def test_monthly_is_the_sum_of_days(con):
    for s in ("current", "asic-from-2027-01"):
        rows = _rows(con, """
            with d as (select date_trunc('month', period_start) as m, sum(loss_usd) as loss,
                              sum(coalesce(lo95_usd, loss_usd)) as lo95, sum(coalesce(hi80_usd, loss_usd)) as hi80
                       from marts.fct_loss_forecast where scenario = ? and grain = 'day' group by 1)
            select d.*, f.loss_usd, f.lo95_usd, f.hi80_usd, f.kind from d
            join marts.fct_loss_forecast f on f.scenario = ? and f.grain = 'month' and f.period_start = d.m""", [s, s])
        assert rows
        for r in rows:
            assert r["loss_usd"] == pytest.approx(r["loss"], rel=1e-9)
            if r["kind"] == "forecast":
                assert r["lo95_usd"] == pytest.approx(r["lo95"], rel=1e-9)
                assert r["hi80_usd"] == pytest.approx(r["hi80"], rel=1e-9)


def test_current_history_is_the_pnl(con):
    rows = con.execute("""select f.loss_usd, p.operating_loss_usd from marts.fct_loss_forecast f
                          join marts.fct_pnl_daily p on p.date = f.period_start and p.vendor = 'all'
                          where f.scenario = 'current' and f.grain = 'day' and f.kind = 'history'""").fetchall()
    assert len(rows) == 30
    for a, b in rows:
        assert a == pytest.approx(b, rel=1e-12)


def test_price_scenarios_move_the_loss_by_the_right_amount(con):
    hist = {s: dict(con.execute("""select period_start, loss_usd from marts.fct_loss_forecast
                                   where scenario = ? and grain = 'day' and kind = 'history'""", [s]).fetchall())
            for s in ("current", "rental-minus-20", "electricity-plus-30", "asic-from-2027-01")}
    parts = dict((d, (e, r)) for d, e, r in con.execute("""
        select e.date, sum(e.energy_cost_usd), sum(case when c.basis = 'rental' then e.hardware_cost_usd else 0 end)
        from marts.fct_device_energy_daily e join ref.chip_costs c using (chip) group by 1""").fetchall())
    for d, cur in hist["current"].items():
        energy, rental = parts[d]
        # every device's bill lands on its own chip's requests in this fleet, so the split is exact
        assert cur - hist["rental-minus-20"][d] == pytest.approx(0.2 * rental, rel=1e-6)
        assert hist["electricity-plus-30"][d] - cur == pytest.approx(0.3 * energy, rel=1e-6)
        # a change that starts after the history leaves the history alone
        assert hist["asic-from-2027-01"][d] == pytest.approx(cur, rel=1e-12)


def test_dated_scenario_follows_current_until_its_start(con):
    start = next(s for s in SCENARIOS if s.name == "asic-from-2027-01").start
    rows = con.execute("""select a.period_start, a.loss_usd, a.hi95_usd, c.loss_usd, c.hi95_usd
                          from marts.fct_loss_forecast a join marts.fct_loss_forecast c
                            on c.scenario = 'current' and c.grain = 'day' and c.period_start = a.period_start
                          where a.scenario = 'asic-from-2027-01' and a.grain = 'day' and a.kind = 'forecast'
                          order by 1""").fetchall()
    before = [r for r in rows if r[0] < start]
    after = [r for r in rows if r[0] >= start]
    assert before and after
    assert all(r[1] == r[3] and r[2] == r[4] for r in before)
    # the ASIC is cheaper per token than the GPUs in this fleet: the loss drops once it takes traffic
    assert np.mean([r[1] for r in after]) < np.mean([r[3] for r in after])


def test_backtest_is_on_held_out_history(con):
    r = con.execute("""select min(backtest_days), max(backtest_days), min(backtest_mape), max(backtest_mase)
                       from marts.fct_loss_forecast where kind = 'forecast'""").fetchone()
    assert r[0] == r[1] == CFG.backtest_days == 14
    assert 0 <= r[2] < 100 and math.isfinite(r[3])


def test_fleet_scale_projection(con):
    rows = {r["scenario"]: r for r in _rows(con, "select * from marts.fct_fleet_scale_projection")}
    assert set(rows) == set(NAMES)
    cur = rows["current"]
    assert cur["annual_revenue_usd"] == pytest.approx(3.7e9)
    assert cur["annual_inference_cost_usd"] == pytest.approx(4.0e9)
    assert cur["annual_operating_loss_usd"] == pytest.approx(4.0e9 + 4.5e9 - 3.7e9)  # ~ the reported ~$5B
    assert cur["delta_vs_current_usd"] == 0
    assert rows["rental-minus-20"]["delta_vs_current_usd"] < 0
    assert rows["electricity-plus-30"]["delta_vs_current_usd"] > 0
    assert 0 < rows["asic-from-2027-01"]["share_of_year_in_effect"] < 1
    for r in rows.values():
        a = json.loads(r["assumptions"])
        assert "FACTS.md B5" in a["source"] and a["method"]
        assert r["annual_operating_loss_usd"] == pytest.approx(
            r["annual_inference_cost_usd"] + r["annual_other_cost_usd"] - r["annual_revenue_usd"])


# --- library-level, no warehouse ---------------------------------------------------------------

def _series(n, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return 100 - 0.3 * t + 12 * ((t % 7) >= 5) + rng.normal(0, 2, n)


@pytest.mark.parametrize("n,expect", [(42, "season 7"), (20, "season 7"), (12, "no season"), (5, "Naive"), (1, "last value")])
def test_short_history_falls_back(n, expect):
    fc = forecast_series(_series(n), dt.date(2026, 1, 1), 30, ForecastConfig())
    assert expect in fc.model
    assert len(fc.mean) == 30 and np.isfinite(fc.mean).all()
    if n > 1:
        for lv in (80, 95):
            assert np.isfinite(fc.lo[lv]).all() and np.isfinite(fc.hi[lv]).all()
        assert (fc.lo[95] <= fc.lo[80]).all() and (fc.lo[80] <= fc.mean).all()
        assert (fc.mean <= fc.hi[80]).all() and (fc.hi[80] <= fc.hi[95]).all()
    if n >= 4:
        assert math.isfinite(fc.backtest_mape) and fc.backtest_days >= 1
    if n >= 42:
        assert fc.backtest_days == 14


def test_backtest_error_measures_the_holdout():
    # a perfectly weekly series is forecast almost exactly; noise makes the backtest error grow
    t = np.arange(56)
    clean = 100 + 10 * np.sin(2 * np.pi * t / 7)
    noisy = clean + np.random.default_rng(1).normal(0, 8, len(t))
    a = forecast_series(clean, dt.date(2026, 1, 1), 14, ForecastConfig())
    b = forecast_series(noisy, dt.date(2026, 1, 1), 14, ForecastConfig())
    assert a.backtest_mape < 1.0 < b.backtest_mape


def test_backtest_scores_the_model_the_full_history_gets():
    # 28 days (the demo): holding out 14 would leave too little for a weekly model, so the backtest
    # holds out fewer days and still fits the weekly model
    fc = forecast_series(_series(28), dt.date(2026, 1, 1), 30, ForecastConfig())
    assert "season 7" in fc.model
    assert fc.backtest_days == 28 - (2 * 7 + 2)


def test_interval_scale_widens_only_when_the_backtest_misses_by_more_than_the_intervals_say():
    from warehouse.money.models import Z80, interval_scale

    sd = np.full(10, 5.0)
    lo80, hi80 = 100 - Z80 * sd, 100 + Z80 * sd
    assert interval_scale(np.full(10, 15.0), lo80, hi80) == pytest.approx(3.0)  # errors of 3 sd
    assert interval_scale(np.full(10, 1.0), lo80, hi80) == 1.0  # never narrows
    assert interval_scale(np.full(10, 1.0), np.full(10, np.nan), np.full(10, np.nan)) == 1.0


def test_intervals_are_widened_to_what_the_backtest_showed():
    # smooth weekly history whose last two weeks jump about: the model fitted before them is far
    # more confident than its misses justify, so the final intervals widen by that factor
    t = np.arange(56)
    y = 100 + 10 * np.sin(2 * np.pi * t / 7) + np.random.default_rng(4).normal(0, 1, 56)
    y[-14:] += np.random.default_rng(3).normal(0, 15, 14)
    # the fallback of a history too short for calibrated bands (conformal.py): forced here
    fallback = replace(ForecastConfig(), min_calibration_errors=366)
    fc = forecast_series(y, dt.date(2026, 1, 1), 14, fallback)
    assert not fc.calibrated and fc.interval_scale > 3
    from warehouse.money.models import _fit_predict

    from warehouse.money.models import Z

    raw, _ = _fit_predict(y, dt.date(2026, 1, 1), 14, 7)
    # issue 14: the widened half-width is combined with the growth-rate uncertainty k days ahead
    assert fc.growth_sd_per_day > 0
    g = {lv: Z[lv] * np.arange(1, 15) * fc.growth_sd_per_day for lv in (80, 95)}
    for lv in (80, 95):
        np.testing.assert_allclose(fc.hi[lv] - fc.mean, np.hypot(fc.interval_scale * (raw[f"hi{lv}"] - raw["mean"]),
                                                                 g[lv]), rtol=1e-9)
        np.testing.assert_allclose(fc.mean - fc.lo[lv], np.hypot(fc.interval_scale * (raw["mean"] - raw[f"lo{lv}"]),
                                                                 g[lv]), rtol=1e-9)
    smooth = forecast_series(100 + 10 * np.sin(2 * np.pi * t / 7) + np.random.default_rng(4).normal(0, 1, 56),
                             dt.date(2026, 1, 1), 14, fallback)
    assert smooth.interval_scale < fc.interval_scale


def test_horizon_is_at_least_90_days_and_12_months():
    days, months = horizon(dt.date(2026, 10, 30), ForecastConfig())
    assert days[0] == dt.date(2026, 10, 31) and days[-1] == dt.date(2027, 9, 30)
    assert months[0] == dt.date(2026, 10, 1) and months[-1] == dt.date(2027, 9, 1)
    days, months = horizon(dt.date(2026, 10, 30), ForecastConfig(horizon_months=1))
    assert len(days) == 90


GOOD = yaml.safe_load(SCENARIOS_FILE.read_text())


def _bad(tmp_path, mutate):
    doc = copy.deepcopy(GOOD)
    mutate(doc)
    p = tmp_path / "scenarios-bad.yaml"
    p.write_text(yaml.safe_dump(doc))
    return p


@pytest.mark.parametrize("mutate,field", [
    (lambda d: d["scenarios"][1]["moves"][0].update(share=1.5), "scenarios[1].moves[0].share"),
    (lambda d: d["scenarios"][1]["moves"][0].update(share="half"), "scenarios[1].moves[0].share"),
    (lambda d: d["scenarios"][1].update(colour="red"), "scenarios[1].colour"),
    (lambda d: d["scenarios"][2].update(start="next year"), "scenarios[2].start"),
    (lambda d: d["scenarios"][3]["prices"].update(rental_hardware=-0.8), "scenarios[3].prices.rental_hardware"),
    (lambda d: d["scenarios"][3].update(prices={"gpu": 0.8}), "scenarios[3].prices.gpu"),
    (lambda d: d["scenarios"].pop(0), "scenarios"),
    (lambda d: d["scenarios"][1].update(name="current"), "scenarios[1].name"),
    (lambda d: d["forecast"].update(backtest_days=0), "forecast.backtest_days"),
    (lambda d: d["fleet_scale"].update(annual_revenue_usd="3.7e9"), "fleet_scale.annual_revenue_usd"),
    (lambda d: d["fleet_scale"].update(annual_revenue_usd=float("inf")), "fleet_scale.annual_revenue_usd"),
    (lambda d: d["scenarios"][1]["moves"][0].update(share=float("nan")), "scenarios[1].moves[0].share"),
    (lambda d: d["forecast"].update(horizon_months=float("nan")), "forecast.horizon_months"),
    (lambda d: d.update(extra=1), "extra"),
])
def test_wrong_scenario_file_is_rejected(tmp_path, mutate, field):
    p = _bad(tmp_path, mutate)
    with pytest.raises(ScenarioError) as err:
        load_scenarios(p)
    assert str(p) in str(err.value) and f"'{field}" in str(err.value), str(err.value)


def test_bundled_scenarios():
    assert NAMES[0] == "current"
    kinds = {s.name: s for s in SCENARIOS}
    assert any(m.target == "amd" for s in SCENARIOS for m in s.moves)
    assert kinds["asic-from-2027-01"].start == dt.date(2027, 1, 1)
    assert kinds["rental-minus-20"].prices == {"rental_hardware": 0.8}
    assert kinds["electricity-plus-30"].prices == {"electricity": 1.3}
    assert SCALE.annual_revenue_usd == 3.7e9 and SCALE.annual_inference_cost_usd == 4.0e9


def test_forecast_check_warns_on_short_history_and_fails_on_broken_intervals(con):
    """The asset check's logic: a history too short for intervals or a backtest is a warning that
    says so; intervals that do not nest, or missing ones on a long history, are failures."""
    from pipelines.money import check_forecast_table

    mem = duckdb.connect()
    mem.execute("create schema marts")
    mem.register("src", con.sql("select * from marts.fct_loss_forecast").to_arrow_table())
    mem.execute("create table marts.fct_loss_forecast as select * from src")
    ok = check_forecast_table(mem)
    assert ok["failures"] == [] and ok["warnings"] == [] and ok["scenarios"] == len(NAMES)

    # a long history without a backtest is a failure
    mem.execute(f"update marts.fct_loss_forecast set backtest_mape = null, backtest_mase = null where scenario = '{NAMES[0]}'")
    res = check_forecast_table(mem)
    assert res["warnings"] == [] and len(res["failures"]) == 1 and "without a backtest" in res["failures"][0]

    # one day of history: no intervals and no backtest is what the forecaster can do, so a warning
    last = mem.execute("select max(period_start) from marts.fct_loss_forecast "
                       "where kind = 'history' and grain = 'day'").fetchone()[0]
    mem.execute("delete from marts.fct_loss_forecast where kind = 'history' and grain = 'day' and period_start < ?",
                [last])
    mem.execute("update marts.fct_loss_forecast set lo80_usd = null, hi80_usd = null, lo95_usd = null, "
                "hi95_usd = null, backtest_mape = null, backtest_mase = null where kind = 'forecast'")
    res = check_forecast_table(mem)
    assert res["failures"] == [], res
    assert len(res["warnings"]) == 2 * len(NAMES)
    assert all("(1 day of history;" in w for w in res["warnings"])

    # intervals that exist but do not nest always fail
    mem.execute("""update marts.fct_loss_forecast set lo80_usd = loss_usd + 1, hi80_usd = loss_usd + 2,
                   lo95_usd = loss_usd - 1, hi95_usd = loss_usd + 3 where kind = 'forecast'""")
    res = check_forecast_table(mem)
    assert any("do not nest" in f for f in res["failures"])
