"""Bands calibrated on the forecast's own past errors (split-conformal, per horizon).

A model's own prediction intervals carry only the noise it saw in sample; on a smooth history
they are far too narrow for a traffic drop or a price step. Here the band at an origin ``o`` (the
first forecast day; the model is fitted on ``y[:o]``) is set from the errors the same model made
from earlier origins ``o'``, at each horizon ``h`` (days ahead), on days already observed before
``o`` (``o' + h - 1 < o``):

* each past error is measured in units of the standard deviation the model's own interval gave
  for that origin and horizon (a normalised, "locally weighted" conformal score): the model says
  how volatile the series has just been, the scores how far off such statements were;
* the half-width at horizon ``h`` and level ``p`` is the conformal quantile of those scores (the
  ``ceil((k + 1) p)``-th smallest of ``k``; the largest when ``k`` is too small for that rank),
  once ``k >= min_errors``, times the model's own standard deviation for the forecast being made;
  a running maximum over the horizon. Beyond the longest horizon ``h0`` with enough errors the
  score quantile of ``h0`` is kept (the model's standard deviation still grows with ``h``);
* the growth-rate uncertainty of the forecast being made is added in quadrature at every horizon:
  ``w(h) = sqrt((q(h) sd_model(h))^2 + (z h sd)^2)``, ``sd`` the bootstrap standard deviation of
  the trend slope of ``y[:o]`` (models.trend_slope_sd), ``z`` the normal quantile of the level;
* with no horizon measured (a short history) :func:`calibrated_halfwidths` returns None and the
  caller keeps the model's intervals (widened by the single-window backtest and the growth term).

Nothing here sees a value of ``y`` at or after ``o``: :func:`past_errors` takes ``y[:o]`` and only
indexes inside it, so a rolling-origin coverage that scores the band at ``o`` on ``y[o + h - 1]``
is out of sample by construction (tests/test_money_coverage.py changes the future and checks that
the band does not move).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

Z80 = 1.2815515655446004  # the standard normal's 90th percentile: an 80 % interval is mean +- Z80 sd


@dataclass
class Paths:
    """Point forecasts (and the model's own intervals) from many origins of one series.

    ``origins[i]``: the first forecast day (index into the series) of row ``i``, the model having
    been fitted on the days before it; ``mean[i, h - 1]``: its forecast ``h`` days ahead;
    ``lo[lv]`` / ``hi[lv]``: the model's own interval bounds, same shape."""

    origins: np.ndarray
    mean: np.ndarray
    lo: dict
    hi: dict
    models: list

    def row(self, o: int) -> int | None:
        hit = np.nonzero(self.origins == o)[0]
        return int(hit[0]) if hit.shape[0] else None


def model_sd(paths: Paths, rows, h: int) -> np.ndarray:
    """The standard deviation the model's own 80 % interval implies ``h`` days ahead, per row."""
    return (paths.hi[80][rows, h - 1] - paths.lo[80][rows, h - 1]) / (2 * Z80)


def past_errors(y_seen: np.ndarray, paths: Paths, horizons: int, window: int) -> list[np.ndarray]:
    """Forecast errors observed before origin ``o = len(y_seen)``, per horizon 1..``horizons``, in
    units of the model's own standard deviation at that origin and horizon (``|actual - forecast| /
    sd``): from the origins in ``[o - window, o)`` whose target day lies inside ``y_seen``."""
    o = len(y_seen)
    out = []
    for h in range(1, horizons + 1):
        keep = (paths.origins >= o - window) & (paths.origins + h - 1 <= o - 1) & (paths.origins < o)
        rows = np.nonzero(keep)[0]
        if h > paths.mean.shape[1] or rows.shape[0] == 0:
            out.append(np.zeros(0))
            continue
        targets = paths.origins[rows] + h - 1
        sd = model_sd(paths, rows, h)
        err = np.abs(np.asarray(y_seen, float)[targets] - paths.mean[rows, h - 1])
        ok = np.isfinite(sd) & (sd > 0) & np.isfinite(err)
        out.append(err[ok] / sd[ok])
    return out


def conformal_quantile(abs_err: np.ndarray, level_pct: float) -> float:
    """The split-conformal quantile: the ceil((k + 1) p)-th smallest of k absolute errors (the
    largest when k is too small for that rank)."""
    e = np.sort(np.asarray(abs_err, float)[np.isfinite(abs_err)])
    k = e.shape[0]
    if k == 0:
        return float("nan")
    rank = math.ceil((k + 1) * level_pct / 100.0)
    return float(e[min(rank, k) - 1])


def calibrated_halfwidths(errors: list[np.ndarray], n_days: int, levels, z: dict, slope_sd: float,
                          min_errors: int, sd_now: np.ndarray | None = None) -> dict | None:
    """Half-width per level and horizon 1..``n_days`` from past errors (see the module docstring);
    None when no horizon has ``min_errors`` errors."""
    measured = [h for h, e in enumerate(errors, start=1) if e.shape[0] >= min_errors]
    if not measured or measured[0] != 1:
        return None
    h0 = 1
    while h0 + 1 <= len(errors) and errors[h0].shape[0] >= min_errors:
        h0 += 1
    out = {}
    k = np.arange(1, n_days + 1, dtype=float)
    for lv in levels:
        q = np.array([conformal_quantile(np.abs(errors[h - 1]), lv) for h in range(1, min(h0, n_days) + 1)])
        q = np.maximum.accumulate(q)
        level = np.empty(n_days)
        level[: q.shape[0]] = q
        if n_days > h0:
            level[h0:] = q[-1]
        if sd_now is not None:
            level = level * sd_now[:n_days]
        out[lv] = np.sqrt(level ** 2 + (z[lv] * k * slope_sd) ** 2)
    # a wider level never sits inside a narrower one
    for a, b in zip(levels, levels[1:]):
        out[b] = np.maximum(out[b], out[a])
    return out
