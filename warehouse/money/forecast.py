"""Operating-loss forecasts per fleet-mix / price scenario, and a projection to fleet scale.

Plain library (no Dagster): ``run_forecast(con)`` reads the marts, writes
``marts.fct_loss_forecast`` and ``marts.fct_fleet_scale_projection`` and returns a summary.
The method is documented in docs/money.md; the parts live in their own modules:

1. scenarios.py: the scenario file (validated).
2. history.py: the history from the marts, and what a scenario does to its unit economics.
3. models.py: one series forecast (statsforecast AutoETS ladder) with 80 % and 95 % bands
   calibrated on the series' own rolling-origin errors (conformal.py; on a history too short for
   that, the model's intervals widened by a backtest on the last ``backtest_days`` days). A change that starts on a date uses
   the current forecast before it and the scenario's after it.
4. Months (here): history days plus forecast days of each calendar month; the month's interval
   bounds are sums of the daily bounds (exact if daily errors are perfectly correlated,
   conservative otherwise).
5. projection.py: the projection to fleet scale.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from warehouse.money.backtest import COVERAGE_COLUMNS, coverage_for_horizon, rolling_coverage, series_paths
from warehouse.money.history import History, in_effect, load_history, scenario_series, transform, volume_factor  # noqa: F401
from warehouse.money.models import LEVELS, SeriesForecast, forecast_series
from warehouse.money.projection import build_fleet_scale_projection
from warehouse.money.scenarios import ForecastConfig, Scenario, load_scenarios

FORECAST_COLUMNS = [
    "scenario", "grain", "period_start", "period_end", "kind", "loss_usd", "lo80_usd", "hi80_usd", "lo95_usd",
    "hi95_usd", "backtest_mape", "backtest_mase", "backtest_days", "interval_scale", "model", "days",
    "forecast_days", "description", "notes", "coverage_horizon_days", "coverage80_pct", "coverage95_pct",
    "growth_sd_usd_per_day",
]


def horizon(last_day: dt.date, cfg: ForecastConfig) -> tuple[list[dt.date], list[dt.date]]:
    """Forecast days (after the last day of history, through the end of the monthly horizon and
    at least ``min_horizon_days``) and the first day of each forecast month."""
    m0 = (last_day + dt.timedelta(days=1)).replace(day=1)
    months = []
    y, m = m0.year, m0.month
    for _ in range(cfg.horizon_months):
        months.append(dt.date(y, m, 1))
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    end_months = dt.date(y, m, 1) - dt.timedelta(days=1)
    end = max(end_months, last_day + dt.timedelta(days=cfg.min_horizon_days))
    days = [last_day + dt.timedelta(days=i) for i in range(1, (end - last_day).days + 1)]
    return days, months


def _month_end(d: dt.date) -> dt.date:
    nxt = dt.date(d.year + (d.month == 12), 1 if d.month == 12 else d.month + 1, 1)
    return nxt - dt.timedelta(days=1)



def _daily_rows(h: History, s: Scenario, start: dt.date | None, adjusted, fc: SeriesForecast,
                base: SeriesForecast, days: list[dt.date]) -> list[dict]:
    """History and forecast days of one scenario (the scenario's series where it is in effect)."""
    daily = []
    for i, d in enumerate(h.dates):
        v = (adjusted[i] * volume_factor(s, start, d)) if in_effect(start, d) else h.loss[i]
        daily.append({"period_start": d, "kind": "history", "loss_usd": float(v), "interval_scale": None,
                      **{f"{b}{lv}_usd": None for b in ("lo", "hi") for lv in LEVELS}})
    for i, d in enumerate(days):
        src = fc if in_effect(start, d) else base
        k = volume_factor(s, start, d) if in_effect(start, d) else 1.0
        daily.append({"period_start": d, "kind": "forecast", "loss_usd": float(src.mean[i] * k),
                      "interval_scale": src.interval_scale,
                      **{f"lo{lv}_usd": float(src.lo[lv][i] * k) for lv in LEVELS},
                      **{f"hi{lv}_usd": float(src.hi[lv][i] * k) for lv in LEVELS}})
    return daily


def _month_rows(common: dict, daily: list[dict], months: list[dt.date], bt: SeriesForecast) -> list[dict]:
    """Every calendar month touched by history or forecast days: sums of its days (bounds too)."""
    rows = []
    by_month: dict[dt.date, list[dict]] = {}
    for r in daily:
        by_month.setdefault(r["period_start"].replace(day=1), []).append(r)
    for m0, rs in sorted(by_month.items()):
        nf = sum(r["kind"] == "forecast" for r in rs)
        if nf == 0 and m0 not in months:
            kind = "history"
        elif m0 in months:
            kind = "forecast"
        else:
            continue
        tot = sum(r["loss_usd"] for r in rs)
        hist_part = sum(r["loss_usd"] for r in rs if r["kind"] == "history")
        row = {**common, "grain": "month", "period_start": m0, "period_end": min(_month_end(m0), rs[-1]["period_start"]),
               "kind": kind, "loss_usd": float(tot), "days": len(rs), "forecast_days": nf,
               "interval_scale": (max(r["interval_scale"] for r in rs if r["kind"] == "forecast")
                                  if kind == "forecast" else None),
               "backtest_mape": bt.backtest_mape if kind == "forecast" else None,
               "backtest_mase": bt.backtest_mase if kind == "forecast" else None}
        for b in ("lo", "hi"):
            for lv in LEVELS:
                row[f"{b}{lv}_usd"] = (float(hist_part + sum(r[f"{b}{lv}_usd"] for r in rs if r["kind"] == "forecast"))
                                       if kind == "forecast" else None)
        rows.append(row)
    return rows


def build_loss_forecast(h: History, cfg: ForecastConfig, scenarios: list[Scenario]) -> tuple[pd.DataFrame, dict]:
    """Rows of marts.fct_loss_forecast for every scenario (daily and monthly, history and forecast)."""
    days, months = horizon(h.last_day, cfg)
    H = len(days)
    base_paths = series_paths(h.loss, h.dates[0], cfg)  # one set of rolling-origin fits per series
    base = forecast_series(h.loss, h.dates[0], H, cfg, base_paths)
    rows: list[dict] = []
    summary: dict[str, Any] = {"history_days": len(h.dates), "first_day": str(h.dates[0]),
                               "last_day": str(h.last_day), "horizon_days": H, "scenarios": {}}
    coverage: list[dict] = []
    base_cov = rolling_coverage(h.loss, h.dates[0], cfg, paths=base_paths)
    for s in scenarios:
        start = s.start_date(h.last_day)
        tr = transform(h, s)
        if s.changes_unit_economics:
            paths = series_paths(tr.adjusted_loss, h.dates[0], cfg)
            fc = forecast_series(tr.adjusted_loss, h.dates[0], H, cfg, paths)
            cov = rolling_coverage(tr.adjusted_loss, h.dates[0], cfg, paths=paths)
        else:
            fc, cov = base, base_cov
        coverage += [{**r, "scenario": s.name} for r in cov]
        notes = "; ".join(dict.fromkeys(tr.notes))
        daily = _daily_rows(h, s, start, tr.adjusted_loss, fc, base, days)
        # a scenario that starts after history mixes two models: name both
        mixed = start is not None and start > h.last_day + dt.timedelta(days=1) and s.changes_unit_economics
        model = f"{base.model} before {start}, {fc.model} after" if mixed and fc.model != base.model else fc.model
        bt = fc  # the backtest scores the scenario's own series
        common = {"scenario": s.name, "backtest_days": bt.backtest_days, "model": model, "description": s.description,
                  "notes": notes}
        for r in daily:
            fcst = r["kind"] == "forecast"
            rows.append({**common, **r, "grain": "day", "period_end": r["period_start"], "days": 1,
                         "forecast_days": int(fcst),
                         "backtest_mape": bt.backtest_mape if fcst else None,
                         "backtest_mase": bt.backtest_mase if fcst else None,
                         **(_coverage_cols(cov, (r["period_start"] - h.last_day).days, fc) if fcst else {})})
        for r in _month_rows(common, daily, months, bt):
            ahead = (r["period_end"] - h.last_day).days
            rows.append({**r, **(_coverage_cols(cov, ahead, fc) if r["kind"] == "forecast" else {})})
        summary["scenarios"][s.name] = {
            "model": model, "backtest_mape_pct": bt.backtest_mape, "backtest_mase": bt.backtest_mase,
            "interval_scale": fc.interval_scale,
            "start": str(start) if start else None,
            "next_12_months_loss_usd": float(sum(r["loss_usd"] for r in daily if r["kind"] == "forecast"
                                                 and r["period_start"] <= _month_end(months[-1]))),
            "notes": notes, "growth_sd_usd_per_day": fc.growth_sd_per_day,
            "coverage": {f"{c['horizon_days']}d/{c['level_pct']}": c["coverage_pct"] for c in cov},
        }
    summary["coverage_rows"] = coverage
    df = pd.DataFrame(rows, columns=FORECAST_COLUMNS)
    return df, summary


def _coverage_cols(cov: list[dict], days_ahead: int, fc: SeriesForecast) -> dict:
    """The measured band coverage that applies ``days_ahead`` days out, and the growth uncertainty."""
    return {**coverage_for_horizon(cov, days_ahead), "growth_sd_usd_per_day": fc.growth_sd_per_day}


def write_tables(con: duckdb.DuckDBPyConnection, forecast: pd.DataFrame, projection: pd.DataFrame,
                 coverage: list[dict] | None = None) -> None:
    con.execute("create schema if not exists marts")
    con.execute("begin")
    try:
        con.register("fc_df", forecast)
        con.execute("""create or replace table marts.fct_loss_forecast as
            select cast(scenario as varchar) as scenario, cast(grain as varchar) as grain,
                   cast(period_start as date) as period_start, cast(period_end as date) as period_end,
                   cast(kind as varchar) as kind, cast(loss_usd as double) as loss_usd,
                   cast(lo80_usd as double) as lo80_usd, cast(hi80_usd as double) as hi80_usd,
                   cast(lo95_usd as double) as lo95_usd, cast(hi95_usd as double) as hi95_usd,
                   cast(backtest_mape as double) as backtest_mape, cast(backtest_mase as double) as backtest_mase,
                   cast(backtest_days as integer) as backtest_days,
                   cast(interval_scale as double) as interval_scale, cast(model as varchar) as model,
                   cast(days as integer) as days, cast(forecast_days as integer) as forecast_days,
                   cast(description as varchar) as description, cast(notes as varchar) as notes,
                   cast(coverage_horizon_days as integer) as coverage_horizon_days,
                   cast(coverage80_pct as double) as coverage80_pct, cast(coverage95_pct as double) as coverage95_pct,
                   cast(growth_sd_usd_per_day as double) as growth_sd_usd_per_day
            from fc_df order by scenario, grain, period_start""")
        con.unregister("fc_df")
        cov = pd.DataFrame(coverage or [], columns=COVERAGE_COLUMNS)
        con.register("cov_df", cov)
        con.execute("""create or replace table marts.fct_forecast_coverage as
            select cast(scenario as varchar) as scenario, cast(horizon_days as integer) as horizon_days,
                   cast(level_pct as integer) as level_pct, cast(origins as integer) as origins,
                   cast(covered as integer) as covered, cast(coverage_pct as double) as coverage_pct,
                   cast(first_origin as date) as first_origin, cast(last_origin as date) as last_origin
            from cov_df order by scenario, horizon_days, level_pct""")
        con.unregister("cov_df")
        con.register("pj_df", projection)
        con.execute("""create or replace table marts.fct_fleet_scale_projection as
            select cast(scenario as varchar) as scenario, cast(annual_revenue_usd as double) as annual_revenue_usd,
                   cast(annual_inference_cost_usd as double) as annual_inference_cost_usd,
                   cast(annual_other_cost_usd as double) as annual_other_cost_usd,
                   cast(annual_operating_loss_usd as double) as annual_operating_loss_usd,
                   cast(delta_vs_current_usd as double) as delta_vs_current_usd,
                   cast(inference_cost_ratio as double) as inference_cost_ratio,
                   cast(revenue_ratio as double) as revenue_ratio,
                   cast(share_of_year_in_effect as double) as share_of_year_in_effect,
                   cast(assumptions as varchar) as assumptions
            from pj_df""")
        con.unregister("pj_df")
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise


def run_forecast(con: duckdb.DuckDBPyConnection, scenarios_path: Path | str | None = None) -> dict:
    """Load scenarios and history, forecast, project, write both tables; returns a summary."""
    cfg, scenarios, scale = load_scenarios(scenarios_path)
    h = load_history(con)
    fc, summary = build_loss_forecast(h, cfg, scenarios)
    pj = build_fleet_scale_projection(h, cfg, scenarios, scale)
    write_tables(con, fc, pj, summary["coverage_rows"])
    summary["rows"] = len(fc)
    summary["projection"] = {r.scenario: {"annual_operating_loss_usd": r.annual_operating_loss_usd,
                                          "delta_vs_current_usd": r.delta_vs_current_usd}
                             for r in pj.itertuples()}
    return summary
