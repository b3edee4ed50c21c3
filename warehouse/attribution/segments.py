"""A device's time cut into segments on which nothing changes: the replica's request timeline
(how many requests prefill, how many decode) merged with the device's sample intervals.

On each segment the device is prefilling (some request is between scheduled and first token; a
prefill pauses decoding, as a serving engine's prefill step does), decoding with batch ``b`` (the
number of requests between first token and finish), or idle. Integrated per interval, these are
the generic features of the power model: prefill device-seconds and decode device-seconds per
batch-size bin. Two compiled sweeps over the sorted events and intervals, linear after one sort:
:func:`interval_features`, then :func:`event_integrals` (the energy one request in each phase
has received up to each event).
"""
from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

#: decode batch-size bins: bin k holds batches [BIN_LO[k], BIN_LO[k+1]) (the last is open)
BIN_LO = np.array([1, 2, 3, 5, 9, 17, 33, 65, 129], np.int64)
BIN_NAMES = ["b1", "b2", "b3_4", "b5_8", "b9_16", "b17_32", "b33_64", "b65_128", "b129_plus"]
N_BINS = BIN_LO.shape[0]
#: feature columns: 0 prefill, 1 + k decode bin k
N_FEATURES = 1 + N_BINS


def batch_bin(b: np.ndarray) -> np.ndarray:
    """Bin index of decode batch sizes ``b >= 1``."""
    return np.searchsorted(BIN_LO, b, side="right") - 1


@dataclass
class Events:
    """Request events sorted by time: each request's start (s), first token (f), finish (e), plus
    query times (day bounds) that change nothing. ``pos[k]``: sorted position of event ``k`` in the
    unsorted order [s..., f..., e..., queries...]."""

    t: np.ndarray
    d_prefill: np.ndarray
    d_decode: np.ndarray
    pos: np.ndarray
    n: int  # requests

    @classmethod
    def build(cls, s: np.ndarray, f: np.ndarray, e: np.ndarray, queries: np.ndarray) -> "Events":
        n = s.shape[0]
        dec = (e > f).astype(np.int64)
        t = np.concatenate([s, f, e, queries])
        dp = np.concatenate([np.ones(n, np.int64), -np.ones(n, np.int64), np.zeros(n + queries.shape[0], np.int64)])
        dd = np.concatenate([np.zeros(n, np.int64), dec, -dec, np.zeros(queries.shape[0], np.int64)])
        o = np.argsort(t, kind="stable")
        pos = np.empty_like(o)
        pos[o] = np.arange(o.shape[0])
        return cls(t[o], dp[o], dd[o], pos, n)


@numba.njit(cache=True)
def _feature(n_pre, n_dec, bin_lo):
    if n_pre > 0:
        return 0
    if n_dec <= 0:
        return -1
    k = 0
    while k + 1 < bin_lo.shape[0] and bin_lo[k + 1] <= n_dec:
        k += 1
    return 1 + k


@numba.njit(cache=True)
def _sweep(ev_t, ev_dp, ev_dd, iv_start, iv_end, bin_lo, coef, price_a, price_i, features, out):
    """One walk over events and intervals. ``features`` (m x F) is filled when ``coef`` is empty;
    else ``out`` (events x 4) gets the cumulative prefill-active, decode-active, prefill-idle,
    decode-idle energy one request in that phase has received at each event. Returns max batch."""
    n_ev, m = ev_t.shape[0], iv_start.shape[0]
    fill = coef.shape[0] == 0
    i = k = 0
    n_pre = n_dec = 0
    max_b = 0
    ga = da = gi = di = 0.0
    t = ev_t[0] if n_ev else 0.0
    if m and (n_ev == 0 or iv_start[0] < t):
        t = iv_start[0]
    while i < n_ev:
        while i < n_ev and ev_t[i] <= t:
            if not fill:
                out[i, 0], out[i, 1], out[i, 2], out[i, 3] = ga, da, gi, di
            n_pre += ev_dp[i]
            n_dec += ev_dd[i]
            i += 1
        while k < m and iv_end[k] <= t:
            k += 1
        nxt = np.inf
        if k < m:
            nxt = iv_start[k] if t < iv_start[k] else iv_end[k]
        if i < n_ev and ev_t[i] < nxt:
            nxt = ev_t[i]
        if nxt == np.inf:
            break
        if k < m and t >= iv_start[k]:
            ft = _feature(n_pre, n_dec, bin_lo)
            if ft >= 0:
                dur = nxt - t
                if fill:
                    features[k, ft] += dur
                    if n_dec > max_b:
                        max_b = n_dec
                else:
                    p = coef[k, ft] * dur
                    if ft == 0:
                        ga += p * price_a[k] / n_pre
                        gi += p * price_i[k] / n_pre
                    else:
                        da += p * price_a[k] / n_dec
                        di += p * price_i[k] / n_dec
        t = nxt
    return max_b


def interval_features(ev: Events, iv_start: np.ndarray, iv_end: np.ndarray) -> tuple[np.ndarray, int]:
    """(intervals x features) device-seconds (prefill, then decode per batch bin), and the largest
    decode batch seen inside the intervals."""
    F = np.zeros((iv_start.shape[0], N_FEATURES))
    max_b = _sweep(ev.t, ev.d_prefill, ev.d_decode, iv_start, iv_end, BIN_LO, np.zeros((0, N_FEATURES)),
                   np.zeros(0), np.zeros(0), F, np.zeros((0, 4)))
    return F, int(max_b)


def event_integrals(ev: Events, iv_start: np.ndarray, iv_end: np.ndarray, coef: np.ndarray,
                    price_a: np.ndarray, price_i: np.ndarray) -> np.ndarray:
    """(events x 4) in the unsorted event order: cumulative energy one prefilling request (active,
    idle: columns 0, 2) and one decoding request (1, 3) has received by the event's time. A
    prefilling segment's modelled power is shared among the requests prefilling, a decoding
    segment's ``P(b)`` split ``1/b`` among the ``b`` decoders; ``price_*`` scales each interval's
    modelled energy to its measured active and shared idle energy."""
    out = np.empty((ev.t.shape[0], 4))
    _sweep(ev.t, ev.d_prefill, ev.d_decode, iv_start, iv_end, BIN_LO, coef, price_a, price_i,
           np.zeros((0, N_FEATURES)), out)
    return np.take(out, ev.pos, axis=0)
