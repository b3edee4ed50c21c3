"""The seconds of each sample interval in which some request was on the device.

A device's idle energy is shared among its requests for the time it was serving them; the rest is
unused capacity. That time is counted in whole cells of ``grain_s`` seconds on the UTC grid: a
cell in which any request was present counts in full (``grain_s = 0``: only the exact seconds a
request was present). Spans are merged once after a sort, and each interval's occupied time is a
difference of one prefix sum: no request is ever joined to an interval.
"""
from __future__ import annotations

import numpy as np


def merged_runs(s: np.ndarray, e: np.ndarray, grain_s: float,
                grid_offset_s: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Disjoint, sorted ``[a, b)`` runs covering every span ``[s, e)`` widened to ``grain_s`` cells
    (the cells' grid is aligned to ``t + grid_offset_s``: times relative to an origin)."""
    ok = np.isfinite(s) & np.isfinite(e) & (e > s)
    s, e = s[ok], e[ok]
    if grain_s > 0:
        s = np.floor((s + grid_offset_s) / grain_s) * grain_s - grid_offset_s
        e = np.ceil((e + grid_offset_s) / grain_s) * grain_s - grid_offset_s
    if s.shape[0] == 0:
        return np.zeros(0), np.zeros(0)
    o = np.argsort(s, kind="stable")
    s, e = s[o], e[o]
    reach = np.maximum.accumulate(e)
    new = np.concatenate([[True], s[1:] > reach[:-1]])
    starts = np.flatnonzero(new)
    ends = np.concatenate([starts[1:], [s.shape[0]]]) - 1
    return s[starts], reach[ends]


def _covered_until(t: np.ndarray, a: np.ndarray, b: np.ndarray, before: np.ndarray) -> np.ndarray:
    """Length of the runs' union below each time ``t``."""
    j = np.searchsorted(a, t, side="right") - 1  # the last run starting at or before t
    jc = np.maximum(j, 0)
    inside = np.where(j >= 0, np.minimum(t, b[jc]) - a[jc], 0.0)
    return np.where(j >= 0, before[jc] + inside, 0.0)


def occupied_s(s: np.ndarray, e: np.ndarray, iv_start: np.ndarray, iv_end: np.ndarray,
               grain_s: float, grid_offset_s: float = 0.0) -> np.ndarray:
    """Per interval, the seconds (counted in ``grain_s`` cells) in which some request was present."""
    a, b = merged_runs(np.asarray(s, np.float64), np.asarray(e, np.float64), grain_s, grid_offset_s)
    if a.shape[0] == 0:
        return np.zeros(iv_start.shape[0])
    before = np.concatenate([[0.0], np.cumsum(b - a)[:-1]])  # covered length before each run
    return np.maximum(_covered_until(iv_end, a, b, before) - _covered_until(iv_start, a, b, before), 0.0)
