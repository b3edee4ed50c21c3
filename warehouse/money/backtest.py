"""Do the bands hold? Rolling-origin backtests of the whole band method (models.forecast_series:
bands calibrated on past errors, growth-rate bootstrap included) at horizons of 1, 7 and 30 days
(scenarios.yaml ``forecast.coverage_horizons_days``).

From each origin o (the last ``coverage_origins`` days, 60 by default, that leave a training
window long enough for the model the full history gets, and h days to score), the band is what
the method gives from ``y[:o]`` alone: the model fitted on the days before o, its band calibrated
on errors observed before o (conformal.py). It covers when the day o + h - 1 lies inside it.
Empirical coverage = covered / origins, per horizon and band (80 %, 95 %): a calibrated 80 % band
covers about 80 % of the time. The fits are made once per series (:func:`series_paths`) and serve
the forecast's calibration and every scored origin. Stored with the forecast
(marts.fct_forecast_coverage, and on each forecast row of marts.fct_loss_forecast for its horizon).

    python -m warehouse.money.backtest --home DIR [--shock] [--origins N]   # the coverage table per scenario
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from warehouse.money.conformal import Paths
from warehouse.money.models import LEVELS, Z80, calibrated_band, forecast_series, min_train_days, origin_paths
from warehouse.money.scenarios import ForecastConfig

COVERAGE_COLUMNS = ["scenario", "horizon_days", "level_pct", "origins", "covered", "coverage_pct", "first_origin",
                    "last_origin"]


def origins_for(n: int, horizon: int, cfg: ForecastConfig) -> list[int]:
    """Origins (index of the first forecast day) with a full training window and ``horizon`` days to
    score: the last ``coverage_origins`` of them (0: all)."""
    lo, hi = min_train_days(cfg), n - horizon
    if hi < lo:
        return []
    return list(range(lo if cfg.coverage_origins == 0 else max(lo, hi - cfg.coverage_origins + 1), hi + 1))


def series_paths(y: np.ndarray, first_day: dt.date, cfg: ForecastConfig) -> Paths:
    """The rolling-origin fits one series needs, for its forecast and its coverage alike: every
    origin that calibrates the forecast from the whole history or a scored origin, forecasting as
    far as the longest calibrated or scored horizon."""
    n = len(y)
    scored = [o for hz in cfg.coverage_horizons_days for o in origins_for(n, hz, cfg)]
    first = min([n, *scored])
    lo = max(min_train_days(cfg), first - cfg.calibration_window_days)
    H = max(cfg.calibration_horizon_days, *cfg.coverage_horizons_days)
    return origin_paths(y, first_day, cfg, range(lo, n), H)


def band_at(y: np.ndarray, o: int, hz: int, first_day: dt.date, cfg: ForecastConfig, paths: Paths):
    """(lo, hi) per level, ``hz`` days ahead from origin ``o``, by the method the forecast uses
    (models.forecast_series), seeing ``y[:o]`` only."""
    seen = np.asarray(y[:o], float)
    r = paths.row(o)
    if r is not None:
        sd_now = (paths.hi[80][r, :hz] - paths.lo[80][r, :hz]) / (2 * Z80)
        band = calibrated_band(seen, paths.mean[r, :hz], paths, cfg, sd_now)
        if band is not None:
            return band[0], band[1]
    fc = forecast_series(seen, first_day, hz, cfg, paths)
    return fc.lo, fc.hi


def rolling_coverage(y: np.ndarray, first_day: dt.date, cfg: ForecastConfig, scenario: str = "",
                     paths: Paths | None = None) -> list[dict]:
    """Coverage rows (COVERAGE_COLUMNS) for one daily series; a horizon without any origin gets
    origins 0 and coverage None (the history is too short to measure it)."""
    y = np.asarray(y, float)
    n = len(y)
    paths = paths if paths is not None else series_paths(y, first_day, cfg)
    rows = []
    for hz in cfg.coverage_horizons_days:
        os_ = origins_for(n, hz, cfg)
        bands = [band_at(y, o, hz, first_day, cfg, paths) for o in os_]
        for lv in LEVELS:
            hits = [bool(lo[lv][hz - 1] <= y[o + hz - 1] <= hi[lv][hz - 1]) for o, (lo, hi) in zip(os_, bands)
                    if np.isfinite(lo[lv][hz - 1])]
            rows.append({"scenario": scenario, "horizon_days": hz, "level_pct": lv, "origins": len(hits),
                         "covered": int(sum(hits)), "coverage_pct": 100.0 * sum(hits) / len(hits) if hits else None,
                         "first_origin": str(first_day + dt.timedelta(days=os_[0])) if os_ else None,
                         "last_origin": str(first_day + dt.timedelta(days=os_[-1])) if os_ else None})
    return rows


def coverage_for_horizon(rows: list[dict], days_ahead: int) -> dict:
    """The measured coverage that applies to a forecast ``days_ahead`` days out: the longest measured
    horizon not beyond it (else the shortest); {} when nothing was measured."""
    measured = sorted({r["horizon_days"] for r in rows if r["origins"]})
    if not measured:
        return {}
    below = [h for h in measured if h <= days_ahead]
    hz = below[-1] if below else measured[0]
    return {"coverage_horizon_days": hz,
            **{f"coverage{r['level_pct']}_pct": r["coverage_pct"] for r in rows if r["horizon_days"] == hz}}


def format_table(rows: list[dict]) -> str:
    """The coverage table as text: one line per scenario, a column per horizon and band."""
    keys = sorted({(r["horizon_days"], r["level_pct"]) for r in rows})
    head = f"{'scenario':<24}" + "".join(f"{f'{h}d {lv}%':>12}" for h, lv in keys)
    lines = [head]
    for s in dict.fromkeys(r["scenario"] for r in rows):
        cells = []
        for h, lv in keys:
            r = next(x for x in rows if x["scenario"] == s and x["horizon_days"] == h and x["level_pct"] == lv)
            cells.append(f"{'-' if r['coverage_pct'] is None else format(r['coverage_pct'], '.0f')} "
                         f"({r['covered']}/{r['origins']})".rjust(12))
        lines.append(f"{s:<24}" + "".join(cells))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    import duckdb

    from collectors.home import Home
    from warehouse.money.history import load_history, scenario_series
    from warehouse.money.scenarios import load_scenarios
    from warehouse.money.shock import Shock, apply_shock

    ap = argparse.ArgumentParser(prog="python -m warehouse.money.backtest", description=__doc__.split("\n\n")[0])
    ap.add_argument("--home", required=True)
    ap.add_argument("--scenarios", default=None)
    ap.add_argument("--shock", action="store_true", help="inject the default shock (traffic drop + price change)")
    ap.add_argument("--origins", type=int, default=None,
                    help="origins per horizon (default: the scenario file's; 0: every origin the history allows)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    cfg, scenarios, _ = load_scenarios(args.scenarios)
    if args.origins is not None:
        cfg = replace(cfg, coverage_origins=args.origins)
    con = duckdb.connect(str(Home(Path(args.home)).db), read_only=True)
    try:
        h = load_history(con)
    finally:
        con.close()
    if args.shock:
        h = apply_shock(h, Shock())
    rows = [r for s in scenarios for r in rolling_coverage(scenario_series(h, s), h.dates[0], cfg, s.name)]
    print(json.dumps(rows, indent=1) if args.json else format_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
