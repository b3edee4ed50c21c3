"""The two day grids the clock-skew estimate correlates (:mod:`warehouse.attribution.clock_skew`).

* activity of a replica on the request clock: requests prefilling and decoding, averaged per cell
  by prefix sums of box functions (no search);
* summed power of a node's devices on the device clock, each interval giving its power to the
  cells whose centre it contains.
"""
from __future__ import annotations

import numba
import numpy as np


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
