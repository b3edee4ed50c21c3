"""One series, forecast: the statsforecast model ladder, its prediction intervals and the
single-window backtest that widens them (docs/money.md).

AutoETS (weekly season when there are >= 2 seasons plus the backtest window, else non-seasonal,
else Naive) forecasts a daily series with 80 % and 95 % intervals; the same model is first fitted
without the last ``backtest_days`` days and scored on them (MAPE in percent, and MASE), and the
intervals are widened (never narrowed) by what that backtest showed.
"""
from __future__ import annotations

import datetime as dt
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from warehouse.money.conformal import Z80, Paths, calibrated_halfwidths, past_errors
from warehouse.money.scenarios import ForecastConfig

LEVELS = (80, 95)


@dataclass
class SeriesForecast:
    mean: np.ndarray
    lo: dict[int, np.ndarray]
    hi: dict[int, np.ndarray]
    model: str
    backtest_mape: float          # percent
    backtest_mase: float
    backtest_days: int
    interval_scale: float = 1.0   # calibrated / the model's own 80 % half-width on day 1 (or the backtest widening)
    growth_sd_per_day: float = 0.0  # bootstrap standard deviation of the trend (USD per day, per day)
    calibrated: bool = False      # bands from past rolling-origin errors (conformal.py), else the model's widened


# the least daily history that can give prediction intervals (a naive model needs two points) and a
# backtest (fit on the first days, score on at least one held-out day)
MIN_DAYS_FOR_INTERVALS = 2
MIN_DAYS_FOR_BACKTEST = 4


def _fit_predict(y: np.ndarray, start: dt.date, h: int, season: int) -> tuple[dict, str]:
    """Fit the first model of the ladder that works on ``y``; forecast ``h`` days with intervals."""
    from statsforecast import StatsForecast
    from statsforecast.models import AutoETS, Naive

    n = len(y)
    df = pd.DataFrame({"unique_id": "loss", "ds": pd.date_range(start, periods=n, freq="D"), "y": y.astype(float)})
    ladder = []
    if season > 1 and n >= 2 * season + 2:
        ladder.append((AutoETS(season_length=season), f"season {season}"))
    if n >= 8:
        ladder.append((AutoETS(season_length=1), "no season"))
    if n >= MIN_DAYS_FOR_INTERVALS:
        ladder.append((Naive(), ""))
    for model, label in ladder:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                sf = StatsForecast(models=[model], freq="D", n_jobs=1)
                sf.fit(df=df)
                fc = sf.predict(h=h, level=list(LEVELS))
            alias = str(model)
            out = {"mean": fc[alias].to_numpy(float)}
            for lv in LEVELS:
                out[f"lo{lv}"] = fc[f"{alias}-lo-{lv}"].to_numpy(float)
                out[f"hi{lv}"] = fc[f"{alias}-hi-{lv}"].to_numpy(float)
            if not all(np.isfinite(v).all() for v in out.values()):
                raise ValueError("non-finite forecast")
            name = alias
            fitted = getattr(sf, "fitted_", None)
            if alias == "AutoETS" and fitted is not None:
                name = f"AutoETS {fitted[0, 0].model_.get('method', '')}".strip()
            return out, f"{name} ({label})" if label else name
        except Exception:  # noqa: BLE001 - try the next, simpler model
            continue
    last = float(y[-1]) if n else 0.0
    nan = np.full(h, np.nan)
    return {"mean": np.full(h, last), **{f"lo{lv}": nan for lv in LEVELS},
            **{f"hi{lv}": nan for lv in LEVELS}}, "last value (history too short for intervals)"


def min_train_days(cfg: ForecastConfig) -> int:
    """The shortest training window that gets the model the full history gets (2 seasons + 2 days)."""
    return 2 * cfg.season_length + 2 if cfg.season_length > 1 else 8


def origin_paths(y: np.ndarray, first_day: dt.date, cfg: ForecastConfig, origins, horizon: int | None = None) -> Paths:
    """The model fitted on ``y[:o]`` for every origin ``o``, forecasting ``horizon`` days (default
    ``cfg.calibration_horizon_days``): the rows past errors and rolling-origin coverage are made of."""
    y = np.asarray(y, float)
    H = horizon or cfg.calibration_horizon_days
    origins = np.asarray(sorted(int(o) for o in origins if 2 <= o <= len(y)), np.int64)
    mean = np.full((origins.shape[0], H), np.nan)
    lo = {lv: mean.copy() for lv in LEVELS}
    hi = {lv: mean.copy() for lv in LEVELS}
    models = []
    for i, o in enumerate(origins):
        out, name = _fit_predict(y[:o], first_day, H, cfg.season_length)
        mean[i] = out["mean"]
        for lv in LEVELS:
            lo[lv][i], hi[lv][i] = out[f"lo{lv}"], out[f"hi{lv}"]
        models.append(name)
    return Paths(origins, mean, lo, hi, models)


def calibration_origins(n: int, cfg: ForecastConfig) -> range:
    """Origins whose past errors calibrate a forecast from ``n`` days of history."""
    return range(max(min_train_days(cfg), n - cfg.calibration_window_days), n)


def calibrated_band(y_seen: np.ndarray, mean: np.ndarray, paths: Paths, cfg: ForecastConfig, sd_now=None):
    """Bounds {level: array} around ``mean`` (a forecast from origin ``len(y_seen)``) from the past
    errors in ``paths`` (conformal.py), with the growth-rate term beyond the measured horizons;
    (lo, hi, slope sd) or None when the history has too few errors."""
    sd = trend_slope_sd(y_seen, cfg)
    errs = past_errors(y_seen, paths, min(len(mean), paths.mean.shape[1]), cfg.calibration_window_days)
    w = calibrated_halfwidths(errs, len(mean), LEVELS, Z, sd, cfg.min_calibration_errors, sd_now)
    if w is None:
        return None
    return {lv: mean - w[lv] for lv in LEVELS}, {lv: mean + w[lv] for lv in LEVELS}, sd


def forecast_series(y: np.ndarray, first_day: dt.date, h: int, cfg: ForecastConfig,
                    paths: Paths | None = None) -> SeriesForecast:
    """Forecast ``h`` days after ``y`` (daily, starting ``first_day``), with a backtest on held-out
    days and bands calibrated on past errors (``paths``: the rolling-origin fits of this series,
    computed here when not given)."""
    y = np.asarray(y, dtype=float)
    n = len(y)
    # hold out backtest_days, but leave the training part long enough for the model the full
    # history gets (a seasonal one needs 2 seasons + 2 days), so that the backtest scores that model
    min_train = min_train_days(cfg)
    if n - cfg.backtest_days >= min_train:
        hold = cfg.backtest_days
    elif n - min_train >= max(1, cfg.backtest_days // 2):
        hold = n - min_train
    else:
        hold = max(1, n // 3)
    mape = mase = float("nan")
    scale = 1.0
    if n >= MIN_DAYS_FOR_BACKTEST and hold >= 1:
        train, test = y[:-hold], y[-hold:]
        bt, _ = _fit_predict(train, first_day, hold, cfg.season_length)
        err = bt["mean"] - test
        nz = np.abs(test) > 1e-9
        if nz.any():
            mape = float(np.mean(np.abs(err[nz]) / np.abs(test[nz])) * 100.0)
        s = cfg.season_length if len(train) > cfg.season_length else 1
        scale_mae = np.mean(np.abs(train[s:] - train[:-s])) if len(train) > s else float("nan")
        if scale_mae and np.isfinite(scale_mae) and scale_mae > 0:
            mase = float(np.mean(np.abs(err)) / scale_mae)
        scale = interval_scale(err, bt["lo80"], bt["hi80"])
    else:
        hold = 0
    out, name = _fit_predict(y, first_day, h, cfg.season_length)
    mean = out["mean"]
    if paths is None:
        paths = origin_paths(y, first_day, cfg, calibration_origins(n, cfg))
    own_sd = (out["hi80"] - out["lo80"]) / (2 * Z80)
    band = calibrated_band(y, mean, paths, cfg, own_sd) if n >= MIN_DAYS_FOR_INTERVALS else None
    if band is not None:
        lo, hi, growth_sd = band
        own = out["hi80"][0] - mean[0]
        scale = float((hi[80][0] - mean[0]) / own) if own > 0 and np.isfinite(own) else float("nan")
    else:
        # too few past errors: the model's intervals, widened (never narrowed) by what the backtest
        # showed, around the mean so the bands keep nesting, plus the growth-rate term
        lo = {lv: mean - scale * np.maximum(mean - out[f"lo{lv}"], 0.0) for lv in LEVELS}
        hi = {lv: mean + scale * np.maximum(out[f"hi{lv}"] - mean, 0.0) for lv in LEVELS}
        lo, hi, growth_sd = widen_for_growth(y, mean, lo, hi, cfg)
    # nesting guard (intervals from one model always nest; kept in case a model misbehaves)
    lo[95] = np.minimum(lo[95], lo[80])
    hi[95] = np.maximum(hi[95], hi[80])
    return SeriesForecast(mean, lo, hi, name, mape, mase, hold, scale, growth_sd, band is not None)


#: the standard normal quantile of each band's upper edge
Z = {80: Z80, 95: 1.959963984540054}


def trend_slope_sd(y: np.ndarray, cfg: ForecastConfig, seed: int = 0) -> float:
    """Uncertainty of the history's growth rate: the standard deviation of the least-squares trend
    slope (USD per day, per day) over moving-block bootstrap resamples of the residuals (blocks of
    one season, so a weekly pattern or a run of bad days stays together). Deterministic (seeded)."""
    y = np.asarray(y, float)
    n = len(y)
    if n < 4:
        return 0.0
    t = np.arange(n, dtype=float)
    X = np.column_stack([np.ones(n), t])
    coef, *_ = np.linalg.lstsq(X, y, rcond=None)
    fitted = X @ coef
    resid = y - fitted
    block = max(1, min(cfg.season_length, n // 3))
    n_blocks = -(-n // block)
    rng = np.random.default_rng(seed)
    starts = rng.integers(0, n - block + 1, size=(cfg.bootstrap_samples, n_blocks))
    idx = (starts[:, :, None] + np.arange(block)[None, None, :]).reshape(cfg.bootstrap_samples, -1)[:, :n]
    ys = fitted[None, :] + resid[idx]                      # [B, n]
    tc = t - t.mean()
    slopes = (ys - ys.mean(axis=1, keepdims=True)) @ tc / (tc @ tc)
    return float(np.std(slopes, ddof=1))


def widen_for_growth(y: np.ndarray, mean: np.ndarray, lo: dict, hi: dict, cfg: ForecastConfig):
    """Add the growth-rate uncertainty to the bands: k days ahead, a trend off by one bootstrap
    standard deviation moves the level by k x sd; each half-width w becomes sqrt(w^2 + (z k sd)^2),
    so the bands widen with the horizon and still nest."""
    sd = trend_slope_sd(y, cfg)
    if not sd or not np.isfinite(sd):
        return lo, hi, 0.0
    k = np.arange(1, len(mean) + 1, dtype=float)
    out_lo, out_hi = {}, {}
    for lv in LEVELS:
        g = Z[lv] * k * sd
        out_lo[lv] = mean - np.sqrt(np.maximum(mean - lo[lv], 0.0) ** 2 + g ** 2)
        out_hi[lv] = mean + np.sqrt(np.maximum(hi[lv] - mean, 0.0) ** 2 + g ** 2)
    return out_lo, out_hi, sd


def interval_scale(err: np.ndarray, lo80: np.ndarray, hi80: np.ndarray) -> float:
    """Factor (>= 1) by which a model's prediction intervals must widen to match its backtest.

    A model's intervals only carry the noise it saw in sample; on a smooth simulated history they
    come out a fraction of a percent wide, while the same model misses held-out days by more. Each
    backtest error is divided by the standard deviation the model's own 80 % interval implies for
    that day; if the root mean square of those standardised errors exceeds 1, the intervals were too
    narrow by that factor, and every forecast interval is widened by it (a variance-inflation
    calibration; with a 14-day backtest it is a rough estimate, so it only ever widens)."""
    sd = (np.asarray(hi80, float) - np.asarray(lo80, float)) / (2 * Z80)
    ok = np.isfinite(sd) & (sd > 0) & np.isfinite(err)
    if not ok.any():
        return 1.0
    z = np.asarray(err, float)[ok] / sd[ok]
    return max(1.0, float(np.sqrt(np.mean(z * z))))
