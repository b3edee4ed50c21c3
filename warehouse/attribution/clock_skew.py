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

import numba
import numpy as np

from collectors.units import DAY_S
from warehouse.attribution.config import SkewConfig


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


@numba.njit(cache=True)
def _add_box_averages(a, b, rate, d0, n_cells, h, out):
    """Add to ``out[k]`` the average over the grid cell ``[d0 + k h, d0 + (k+1) h)`` of
    ``sum_j rate_j 1[a_j <= t < b_j]``: ``W(x) = sum over events tau < x of r (x - tau)`` on the
    grid points, events binned then summed cumulatively (times relative to ``d0``); no search."""
    R = np.zeros(n_cells + 2)
    S = np.zeros(n_cells + 2)
    for j in range(a.shape[0]):
        for tau, r in ((a[j] - d0, rate[j]), (b[j] - d0, -rate[j])):
            k = np.ceil(tau / h)
            k = 0 if k < 0 else (n_cells + 1 if k > n_cells + 1 else int(k))
            R[k] += r
            S[k] += r * tau
    rk = 0.0
    sk = 0.0
    w_prev = 0.0
    for k in range(n_cells + 1):
        rk += R[k]
        sk += S[k]
        w = k * h * rk - sk
        if k > 0:
            out[k - 1] += (w - w_prev) / h
        w_prev = w


def cell_average_of_boxes(a: np.ndarray, b: np.ndarray, rate: np.ndarray, d0: float, n_cells: int,
                          h: float) -> np.ndarray:
    """Average over each grid cell ``[d0 + k h, d0 + (k+1) h)`` of ``sum_j rate_j 1[a_j <= t < b_j]``."""
    out = np.zeros(n_cells)
    _add_box_averages(np.ascontiguousarray(a, np.float64), np.ascontiguousarray(b, np.float64),
                      np.ascontiguousarray(rate, np.float64), float(d0), int(n_cells), float(h), out)
    return out


def activity_grid(s: np.ndarray, f: np.ndarray, e: np.ndarray, completion: np.ndarray, d0: float,
                  n_cells: int, h: float, weights: tuple[float, float] = (1.7, 1.0)) -> np.ndarray:
    """A replica's activity per grid cell: prefill weight x requests prefilling, plus decode weight
    x min(1, requests decoding). ``s, f, e``: prefill start, first token, finish on the request
    clock, already clamped by :func:`warehouse.attribution.timeline.request_spans`."""
    pre = cell_average_of_boxes(s, f, np.ones_like(s), d0, n_cells, h)
    dec = cell_average_of_boxes(f, e, (completion > 1).astype(np.float64), d0, n_cells, h)
    np.minimum(dec, 1.0, out=dec)
    dec *= weights[1]
    pre *= weights[0]
    pre += dec
    return pre


@numba.njit(cache=True)
def _add_power_cells(start, end, energy, gap, d0, n_cells, h, g, count):
    """Add each interval's power to the cells whose centre it contains; count covering devices."""
    for i in range(start.shape[0]):
        dur = end[i] - start[i]
        if dur <= 0 or gap[i]:
            continue
        p = energy[i] / dur
        lo = np.ceil((start[i] - d0) / h - 0.5)
        hi = np.ceil((end[i] - d0) / h - 0.5)
        lo = 0 if lo < 0 else (n_cells if lo > n_cells else int(lo))
        hi = 0 if hi < 0 else (n_cells if hi > n_cells else int(hi))
        for c in range(lo, hi):
            g[c] += p
            count[c] += 1


def power_grid(ivs: list, d0: float, n_cells: int, h: float) -> tuple[np.ndarray, np.ndarray]:
    """Summed power of devices per grid cell (each interval gives its power to the cells whose
    centre it contains) and whether every device covers the cell (an interval, not a gap)."""
    g = np.zeros(n_cells)
    count = np.zeros(n_cells, np.int32)
    for iv in ivs:
        if iv.start.shape[0]:
            _add_power_cells(iv.start, iv.end, iv.energy_j, iv.gap, float(d0), int(n_cells), float(h), g, count)
    return g, count == len(ivs)


@numba.njit(cache=True)
def _prepare(g, covered, act, margin, factor):
    """Power centred over the covered cells of the window ``[margin, n - margin)`` (0 elsewhere and
    in gaps), the same on the coarse grid (``factor`` cells per coarse cell), activity on the
    coarse grid, and prefix sums of activity and its square on both grids."""
    n = g.shape[0]
    nc = n // factor
    mc = margin // factor
    tot = 0.0
    cnt = 0
    for k in range(margin, n - margin):
        if covered[k]:
            tot += g[k]
            cnt += 1
    mean = tot / cnt if cnt else 0.0
    gw = np.zeros(n - 2 * margin)
    for k in range(margin, n - margin):
        if covered[k]:
            gw[k - margin] = g[k] - mean
    gc_full = np.zeros(nc)
    cov_c = np.zeros(nc, np.int64)
    ac = np.zeros(nc)
    for k in range(nc * factor):
        j = k // factor
        ac[j] += act[k] / factor
        if covered[k]:
            gc_full[j] += g[k]
            cov_c[j] += 1
    tot = 0.0
    cnt = 0
    for j in range(mc, nc - mc):
        if cov_c[j] * 2 > factor:
            gc_full[j] /= cov_c[j]
            tot += gc_full[j]
            cnt += 1
    meanc = tot / cnt if cnt else 0.0
    gc = np.zeros(nc - 2 * mc)
    for j in range(mc, nc - mc):
        if cov_c[j] * 2 > factor:
            gc[j - mc] = gc_full[j] - meanc
    a1 = np.zeros(n + 1)
    a2 = np.zeros(n + 1)
    for k in range(n):
        a1[k + 1] = a1[k] + act[k]
        a2[k + 1] = a2[k] + act[k] * act[k]
    c1 = np.zeros(nc + 1)
    c2 = np.zeros(nc + 1)
    for j in range(nc):
        c1[j + 1] = c1[j] + ac[j]
        c2[j + 1] = c2[j] + ac[j] * ac[j]
    return gw, gc, ac, a1, a2, c1, c2, cnt


@numba.njit(cache=True, fastmath=True)
def _curve(g, a, a1, a2, margin, lags, num, den):
    """Add, per lag, the covariance of ``g`` (window ``[margin, n - margin)``) with activity
    shifted by the lag to ``num``, and the product of their standard deviations to ``den``."""
    n = g.shape[0]
    sg = 0.0
    for k in range(n):
        sg += g[k] * g[k]
    sd_g = np.sqrt(sg / n)
    for j in range(lags.shape[0]):
        lo = margin - lags[j]
        acc = 0.0
        for k in range(n):
            acc += g[k] * a[lo + k]
        num[j] += acc / n
        mean = (a1[lo + n] - a1[lo]) / n
        var = (a2[lo + n] - a2[lo]) / n - mean * mean
        den[j] += sd_g * np.sqrt(var if var > 0 else 0.0)


def _correlation(parts: list, lags: np.ndarray, coarse: bool, margin: int) -> np.ndarray:
    """Pooled correlation curve: covariances summed over replicas over the summed products of
    standard deviations (a weighted mean of the replicas' correlations)."""
    num = np.zeros(lags.shape[0])
    den = np.zeros(lags.shape[0])
    for gw, gc, ac, a1, a2, c1, c2, act in parts:
        if coarse:
            _curve(gc, ac, c1, c2, margin, lags, num, den)
        else:
            _curve(gw, act, a1, a2, margin, lags, num, den)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / den, 0.0)


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
        gw, gc, ac, a1, a2, c1, c2, cnt = _prepare(g, m, act, margin_f, factor)
        if cnt < 10:
            continue
        devices += len(ivs)
        parts.append((gw, gc, ac, a1, a2, c1, c2, act))
    if not parts:
        return None
    lags_c = np.arange(-margin_c, margin_c + 1)
    cc = _correlation(parts, lags_c, True, margin_c)
    best_c = int(lags_c[int(np.argmax(cc))]) * factor
    lags_f = np.arange(best_c - factor, best_c + factor + 1)
    lags_f = lags_f[np.abs(lags_f) <= margin_f]
    cf = _correlation(parts, lags_f, False, margin_f)
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
    zero = float(_correlation(parts, np.array([0]), False, margin_f)[0])
    return SkewEstimate(skew_s=float(lag * h), correlation=peak, correlation_at_zero=zero, devices=devices)


def should_correct(est: SkewEstimate | None, cfg: SkewConfig) -> bool:
    """A confident estimate (peak correlation, margin over lag 0) of a skew worth correcting."""
    return bool(est is not None and cfg.correct and est.correlation >= cfg.min_correlation
                and est.margin >= cfg.min_margin and abs(est.skew_s) >= cfg.min_abs_skew_s
                and abs(est.skew_s) < cfg.max_lag_s)
