"""Money assets: the price reference tables, the operating-loss forecast per scenario and its
projection to fleet scale.

The logic is in warehouse/money/ (prices.py, forecast.py; no Dagster there); this module only wires
it in. The scenario file is warehouse/money/scenarios.yaml, or the file named by ``TOKENWATT_SCENARIOS``; a wrong
file fails the asset with a message naming the file and the field.
"""

import json
import os

import dagster as dg

from warehouse.money.forecast import run_forecast
from warehouse.money.models import LEVELS, MIN_DAYS_FOR_BACKTEST, MIN_DAYS_FOR_INTERVALS
from warehouse.money.scenarios import SCENARIOS_ENV, load_scenarios
from warehouse.money.prices import load_prices, write_ref_tables

from pipelines.resources import TokenwattHome

FORECAST_KEY = dg.AssetKey(["marts", "fct_loss_forecast"])
PROJECTION_KEY = dg.AssetKey(["marts", "fct_fleet_scale_projection"])
UPSTREAM = [["marts", "fct_pnl_daily"], ["marts", "fct_cost_per_token_daily"], ["marts", "fct_device_energy_daily"],
            ["marts", "fct_cost_reconciliation"], ["ref", "chip_costs"]]


def check_forecast_table(con) -> dict:
    """Structural checks of marts.fct_loss_forecast: every scenario has history and forecast rows at
    both grains covering the horizon without gaps, a mean, both intervals (95 % around 80 % around
    the mean) and a backtest error.

    Returns ``failures`` (empty when all pass), ``warnings`` and counts. A scenario whose history is
    too short to give intervals (fewer than MIN_DAYS_FOR_INTERVALS days) or a backtest (fewer than
    MIN_DAYS_FOR_BACKTEST) is a warning that says so, not a failure: a new fleet has to start
    somewhere. Intervals that exist but do not nest are always a failure.
    """
    cfg, scenarios, _ = load_scenarios()
    failures, warnings = [], []
    names = {r[0] for r in con.execute("select distinct scenario from marts.fct_loss_forecast").fetchall()}
    missing = [s.name for s in scenarios if s.name not in names]
    if missing:
        failures.append(f"scenarios missing: {missing}")
    per = con.execute("""
        select scenario,
               count(*) filter (where kind = 'history' and grain = 'day') as history_days,
               count(*) filter (where kind = 'forecast' and (lo95_usd is null or lo80_usd is null
                                 or hi80_usd is null or hi95_usd is null or loss_usd is null)) as no_interval,
               count(*) filter (where kind = 'forecast' and not (lo95_usd <= lo80_usd and lo80_usd <= loss_usd
                                 and loss_usd <= hi80_usd and hi80_usd <= hi95_usd)) as bad_nest,
               count(*) filter (where kind = 'forecast' and backtest_mape is null and backtest_mase is null) as no_bt
        from marts.fct_loss_forecast group by scenario order by scenario""").fetchall()
    for scenario, hist, no_interval, bad_nest, no_bt in per:
        days = f"{hist} day{'' if hist == 1 else 's'} of history"
        if bad_nest:
            failures.append(f"{scenario}: {bad_nest} forecast rows whose intervals do not nest")
        if no_interval:
            (warnings if hist < MIN_DAYS_FOR_INTERVALS else failures).append(
                f"{scenario}: {no_interval} forecast rows without intervals ({days}"
                + (f"; intervals need {MIN_DAYS_FOR_INTERVALS})" if hist < MIN_DAYS_FOR_INTERVALS else ")"))
        if no_bt:
            (warnings if hist < MIN_DAYS_FOR_BACKTEST else failures).append(
                f"{scenario}: {no_bt} forecast rows without a backtest error ({days}"
                + (f"; a backtest needs {MIN_DAYS_FOR_BACKTEST})" if hist < MIN_DAYS_FOR_BACKTEST else ")"))
    gaps = con.execute("""
        select scenario, count(*) as days, datediff('day', min(period_start), max(period_start)) + 1 as span,
               count(*) filter (where kind = 'forecast') as fdays
        from marts.fct_loss_forecast where grain = 'day' group by scenario
        having count(*) <> datediff('day', min(period_start), max(period_start)) + 1
            or count(*) filter (where kind = 'forecast') < ?""", [cfg.min_horizon_days]).fetchall()
    if gaps:
        failures.append(f"daily rows with gaps or a short horizon: {gaps}")
    months = con.execute("""select scenario, count(*) from marts.fct_loss_forecast
                            where grain = 'month' and kind = 'forecast' group by scenario
                            having count(*) <> ?""", [cfg.horizon_months]).fetchall()
    if months:
        failures.append(f"scenarios without {cfg.horizon_months} forecast months: {months}")
    rows = con.execute("select count(*) from marts.fct_loss_forecast").fetchone()[0]
    return {"failures": failures, "warnings": warnings, "rows": rows, "scenarios": len(names)}


@dg.multi_asset(
    specs=[
        dg.AssetSpec(FORECAST_KEY, deps=UPSTREAM, kinds={"duckdb", "python"}, group_name="money",
                     description="Operating loss per scenario: daily history + >= 90 days and 12 months of "
                                 f"forecast with {LEVELS[0]} % and {LEVELS[1]} % intervals and a backtest error "
                                 "(statsforecast; warehouse/scenarios.yaml)"),
        dg.AssetSpec(PROJECTION_KEY, deps=[FORECAST_KEY], kinds={"duckdb", "python"}, group_name="money",
                     description="Each scenario's effect on annual cost, revenue and loss at the public 2024 "
                                 "scale (FACTS.md B5)"),
    ],
    check_specs=[dg.AssetCheckSpec("intervals_nest_and_cover_horizon", asset=FORECAST_KEY,
                                   description="every scenario present; 95 % interval contains the 80 % one "
                                               "which contains the mean; no gaps; horizon covered; backtest stored")],
    can_subset=False,
)
def loss_forecast(context: dg.AssetExecutionContext, tokenwatt: TokenwattHome):
    """Forecast the operating loss per scenario; write marts.fct_loss_forecast and marts.fct_fleet_scale_projection."""
    con = tokenwatt.connect()
    try:
        summary = run_forecast(con, os.environ.get(SCENARIOS_ENV))
        check = check_forecast_table(con)
    finally:
        con.close()
    for name, s in summary["scenarios"].items():
        if s["notes"]:
            context.log.warning(s["notes"])
        context.log.info(f"{name}: {s['model']}, backtest MAPE {s['backtest_mape_pct']:.2f} %, "
                         f"intervals widened x{s['interval_scale']:.2f} to match the backtest, "
                         f"next 12 months loss {s['next_12_months_loss_usd']:,.0f} USD")
    yield dg.MaterializeResult(
        asset_key=FORECAST_KEY,
        metadata={"rows": summary["rows"], "history_days": summary["history_days"],
                  "horizon_days": summary["horizon_days"], "last_history_day": summary["last_day"],
                  **{f"backtest_mape_pct/{k}": float(v["backtest_mape_pct"]) for k, v in summary["scenarios"].items()
                     if v["backtest_mape_pct"] == v["backtest_mape_pct"]}},
    )
    yield dg.MaterializeResult(
        asset_key=PROJECTION_KEY,
        metadata={f"annual_loss_usd/{k}": float(v["annual_operating_loss_usd"])
                  for k, v in summary["projection"].items()},
    )
    for w in check["warnings"]:
        context.log.warning(f"fct_loss_forecast: {w}")
    # a history too short for intervals or a backtest is a warning (WARN severity), anything else an error
    yield dg.AssetCheckResult(check_name="intervals_nest_and_cover_horizon", asset_key=FORECAST_KEY,
                              passed=not check["failures"] and not check["warnings"],
                              severity=dg.AssetCheckSeverity.ERROR if check["failures"] else dg.AssetCheckSeverity.WARN,
                              metadata={"failures": "; ".join(check["failures"]) or "none",
                                        "warnings": "; ".join(check["warnings"]) or "none",
                                        "rows": check["rows"], "scenarios": check["scenarios"]})


REF_KEYS = ["chip_costs", "sites", "tariff_hours", "api_prices", "subscription", "node_sites"]


@dg.multi_asset(
    specs=[dg.AssetSpec(["ref", k], kinds={"duckdb"}, group_name="ingest",
                        description=f"ref.{k} from the validated price file") for k in REF_KEYS],
    can_subset=False,
)
def prices(context: dg.AssetExecutionContext, tokenwatt: TokenwattHome):
    """Prices, PUE, tariffs and revenue rules from warehouse/prices.yaml (validated; a bad file stops the run)."""
    path = os.environ.get("TOKENWATT_PRICES")
    p = load_prices(path)
    sites = {}
    meta = tokenwatt.home.fleet_meta
    if meta.exists():
        sites = json.loads(meta.read_text()).get("node_sites", {})
    con = tokenwatt.connect()
    try:
        write_ref_tables(con, p, sites)
    finally:
        con.close()
    for k in REF_KEYS:
        yield dg.MaterializeResult(asset_key=["ref", k], metadata={"source": p["source"]})


# what pipelines/definitions.py adds to its assets list
ASSETS = [prices, loss_forecast]
