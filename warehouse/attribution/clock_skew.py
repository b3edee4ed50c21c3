"""Clock skew between a node's device samples and its requests, per node and UTC day.

A node whose clock runs ahead of the request log's (or whose collector stamps samples late) puts
every sample ``skew_s`` seconds after the instant it measured; the attribution then prices each
interval's energy against the wrong requests. The skew is estimated from the data itself:

* **Power** per sample interval from the device's cumulative energy counter where it is sound, else
  integrated power (:func:`warehouse.attribution.intervals.device_intervals`): the counter is an exact
  integral, so the estimate is not biased by the power sensor's averaging window. Gap intervals
  carry no signal.
* **Activity** of the replica on the request clock: ``prefill_weight x`` the number of requests
  prefilling plus ``decode_weight x min(1, requests decoding)`` (decode power depends little on
  the batch size), averaged over the same grid cells.
* Both are laid on a grid of ``fine_step_s`` cells over the UTC day; the Pearson correlation of
  power at device time ``x`` with activity at request time ``x - lag`` is evaluated for every lag
  of a coarse grid (``coarse_step_s`` over ``+-max_lag_s``), then on the fine grid around the best
  coarse lag, and the peak is refined by a parabola through its neighbours. The devices of a node
  are pooled (covariances summed over its replicas, each replica's devices' power summed).
* The estimate is ``skew_s`` (positive: samples stamped later than the requests), its peak
  correlation and the margin of that peak over the correlation at lag 0.

Only the day's own samples and requests are used, and power cells within ``max_lag_s`` of
midnight are left out, so a day's estimate does not depend on which other days are attributed
with it. Everything is bincount, cumulative sums and one dot product per lag: linear in samples
and requests, no request-sample join.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from collectors.units import DAY_S
from warehouse.attribution.config import SkewConfig
from warehouse.attribution.skew_correlation import pooled_correlation, prepare
from warehouse.attribution.skew_grids import activity_grid, power_grid


@dataclass
class SkewEstimate:
    skew_s: float
    correlation: float  # at the estimated lag
    correlation_at_zero: float
    devices: int
    applied: bool = False

    @property
    def margin(self) -> float:
        return self.correlation - self.correlation_at_zero


def estimate_day(replicas: list, day: int, cfg: SkewConfig,
                 weights: tuple[float, float] = (1.7, 1.0)) -> SkewEstimate | None:
    """Skew of one node on one UTC day.

    ``replicas``: per replica of the node, ``(s, f, e, completion, [DeviceIntervals, ...])`` with
    the spans (:func:`warehouse.attribution.timeline.request_spans`) of the requests that ran that day
    (request clock) and its devices' intervals of that day (device clock). None when there is too little signal (no requests, no samples).
    """
    d0 = day * DAY_S
    h = cfg.fine_step_s
    factor = max(int(round(cfg.coarse_step_s / h)), 1)
    hc = h * factor
    n_cells = int(round(DAY_S / hc)) * factor
    margin_c = int(np.ceil(cfg.max_lag_s / hc))
    margin_f = margin_c * factor
    parts = []
    devices = 0
    for s, f, e, comp, ivs in replicas:
        if s.shape[0] == 0 or not ivs:
            continue
        act = activity_grid(s, f, e, comp, d0, n_cells, h, weights)
        g, m = power_grid(ivs, d0, n_cells, h)
        gw, gc, ac, a1, a2, c1, c2, cnt = prepare(g, m, act, margin_f, factor)
        if cnt < 10:
            continue
        devices += len(ivs)
        parts.append((gw, gc, ac, a1, a2, c1, c2, act))
    if not parts:
        return None
    lags_c = np.arange(-margin_c, margin_c + 1)
    cc = pooled_correlation(parts, lags_c, True, margin_c)
    best_c = int(lags_c[int(np.argmax(cc))]) * factor
    lags_f = np.arange(best_c - factor, best_c + factor + 1)
    lags_f = lags_f[np.abs(lags_f) <= margin_f]
    cf = pooled_correlation(parts, lags_f, False, margin_f)
    j = int(np.argmax(cf))
    lag = float(lags_f[j])
    peak = float(cf[j])
    if 0 < j < lags_f.shape[0] - 1:
        y0, y1, y2 = cf[j - 1], cf[j], cf[j + 1]
        den = y0 - 2 * y1 + y2
        if den < 0:
            off = 0.5 * (y0 - y2) / den
            lag += off
            peak = float(y1 - 0.25 * (y0 - y2) * off)
    zero = float(pooled_correlation(parts, np.array([0]), False, margin_f)[0])
    return SkewEstimate(skew_s=float(lag * h), correlation=peak, correlation_at_zero=zero, devices=devices)


def should_correct(est: SkewEstimate | None, cfg: SkewConfig) -> bool:
    """A confident estimate (peak correlation, margin over lag 0) of a skew worth correcting."""
    return bool(est is not None and cfg.correct and est.correlation >= cfg.min_correlation
                and est.margin >= cfg.min_margin and abs(est.skew_s) >= cfg.min_abs_skew_s
                and abs(est.skew_s) < cfg.max_lag_s)
