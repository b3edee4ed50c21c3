"""A device's time cut into segments on which nothing changes: the replica's request timeline
(how many requests prefill, how many decode) merged with the device's sample intervals.

On each segment the device is prefilling (some request is between scheduled and first token; a
prefill pauses decoding, as a serving engine's prefill step does), decoding with batch ``b`` (the
number of requests between first token and finish), or idle. Integrated per interval, these are
the generic features of the power model: prefill device-seconds and decode device-seconds per
batch-size bin. Everything is sorting, ``searchsorted`` and ``bincount``: linear after one sort.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: decode batch-size bins: bin k holds batches [BIN_LO[k], BIN_LO[k+1]) (the last is open)
BIN_LO = np.array([1, 2, 3, 5, 9, 17, 33, 65, 129])
BIN_NAMES = ["b1", "b2", "b3_4", "b5_8", "b9_16", "b17_32", "b33_64", "b65_128", "b129_plus"]
N_BINS = BIN_LO.shape[0]
#: feature columns: 0 prefill, 1 + k decode bin k
N_FEATURES = 1 + N_BINS


@dataclass
class Segments:
    """Segments [bounds[k], bounds[k+1]) of one device (times relative to the work's origin)."""

    bounds: np.ndarray  # n + 1 boundaries
    interval: np.ndarray  # interval index of each segment, -1 outside every interval
    n_prefill: np.ndarray  # requests prefilling on the segment
    n_decode: np.ndarray  # requests decoding on the segment
    feature: np.ndarray  # feature column of the segment's device time, -1 when idle

    @property
    def duration(self) -> np.ndarray:
        return np.diff(self.bounds)


def _counts_at(t_ev: np.ndarray, delta: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Running sum of ``delta`` (events at sorted times ``t_ev``) just after each time ``x``."""
    o = np.argsort(t_ev, kind="stable")
    t_sorted = t_ev[o]
    run = np.cumsum(delta[o])
    j = np.searchsorted(t_sorted, x, side="right") - 1
    out = np.zeros(x.shape[0], np.int64)
    ok = j >= 0
    out[ok] = run[j[ok]]
    return out


def batch_bin(b: np.ndarray) -> np.ndarray:
    """Bin index of decode batch sizes ``b >= 1``."""
    return np.searchsorted(BIN_LO, b, side="right") - 1


def build_segments(s: np.ndarray, f: np.ndarray, e: np.ndarray, iv_start: np.ndarray,
                   iv_end: np.ndarray) -> Segments:
    """Cut time at every request event and interval boundary (all relative to the same origin)."""
    has_dec = e > f
    bounds = np.unique(np.concatenate([s, f, e[has_dec], iv_start, iv_end]))
    x = bounds[:-1]
    n_pre = _counts_at(np.concatenate([s, f]), np.concatenate([np.ones(s.shape[0], np.int64),
                                                                -np.ones(f.shape[0], np.int64)]), x)
    fd, ed = f[has_dec], e[has_dec]
    n_dec = _counts_at(np.concatenate([fd, ed]), np.concatenate([np.ones(fd.shape[0], np.int64),
                                                                  -np.ones(ed.shape[0], np.int64)]), x)
    k = np.searchsorted(iv_start, x, side="right") - 1
    inside = (k >= 0) & (x < iv_end[np.maximum(k, 0)])
    k = np.where(inside, k, -1)
    feature = np.where(n_pre > 0, 0, np.where(n_dec > 0, 1 + batch_bin(np.maximum(n_dec, 1)), -1))
    return Segments(bounds, k, n_pre, n_dec, feature)


def interval_features(seg: Segments, n_intervals: int) -> np.ndarray:
    """(intervals x features) device-seconds: prefill, then decode per batch bin."""
    use = (seg.interval >= 0) & (seg.feature >= 0)
    flat = seg.interval[use] * N_FEATURES + seg.feature[use]
    return np.bincount(flat, weights=seg.duration[use], minlength=n_intervals * N_FEATURES).reshape(
        n_intervals, N_FEATURES)


def cumulative_energy(seg: Segments, coef: np.ndarray, price: np.ndarray):
    """Prefix sums of the energy one prefilling and one decoding request receive, over segments.

    ``coef``: (intervals x features) modelled power of each feature in each interval (W);
    ``price``: per interval, joules per modelled joule. A prefilling segment's power is shared
    among the requests prefilling, a decoding segment's ``P(b)`` is split ``1/b`` among the ``b``
    decoders. Returns (bounds, cumulative prefill, cumulative decode, prefill rate, decode rate):
    the energy a request gets over [x, y) of a phase is ``G(y) - G(x)``.
    """
    k = seg.interval
    ok = (k >= 0) & (seg.feature >= 0)
    kk = np.where(ok, k, 0)
    power = np.where(ok, coef[kk, np.maximum(seg.feature, 0)] * price[kk], 0.0)
    rate_p = np.where(ok & (seg.n_prefill > 0), power / np.maximum(seg.n_prefill, 1), 0.0)
    rate_d = np.where(ok & (seg.n_prefill == 0) & (seg.n_decode > 0), power / np.maximum(seg.n_decode, 1), 0.0)
    dur = seg.duration
    cp = np.concatenate([[0.0], np.cumsum(rate_p * dur)])
    cd = np.concatenate([[0.0], np.cumsum(rate_d * dur)])
    return cp, cd, rate_p, rate_d


def integral(bounds: np.ndarray, cum: np.ndarray, rate: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``G(x)``: the cumulative energy at times ``x`` (exact at boundaries, linear inside)."""
    j = np.clip(np.searchsorted(bounds, x, side="right") - 1, 0, bounds.shape[0] - 1)
    inside = j < rate.shape[0]
    jr = np.minimum(j, rate.shape[0] - 1)
    extra = np.where(inside, rate[jr] * np.clip(x - bounds[j], 0.0, None), 0.0)
    return np.where(x < bounds[0], 0.0, cum[j] + extra)
