"""Pooled correlation of power against lagged activity for the clock-skew estimate
(:mod:`warehouse.attribution.clock_skew`): centring, coarse grid, prefix sums, one dot product per lag."""
from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True)
def prepare(g, covered, act, margin, factor):
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


def pooled_correlation(parts: list, lags: np.ndarray, coarse: bool, margin: int) -> np.ndarray:
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
