"""A device's time cut into segments on which nothing changes: the replica's request timeline
(how many requests prefill, how many decode) merged with the device's sample intervals.

On each segment the device is prefilling (some request is between scheduled and first token; a
prefill pauses decoding, as a serving engine's prefill step does), decoding with batch ``b`` (the
number of requests between first token and finish), or idle. Integrated per interval, these are
the generic features of the power model: prefill device-seconds and decode device-seconds per
batch-size bin. Two compiled sweeps over the sorted events and intervals, linear after one sort:
:func:`interval_features`, then :func:`event_integrals` (the energy, and the device-seconds, one
request in each phase has received up to each event, written straight in the events' unsorted order).
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
    query times (day bounds) that change nothing. ``order[i]``: the index, in the unsorted order
    [s..., f..., e..., queries...], of the ``i``-th event in time."""

    t: np.ndarray
    d_prefill: np.ndarray
    d_decode: np.ndarray
    order: np.ndarray
    n: int  # requests

    @classmethod
    def build(cls, s: np.ndarray, f: np.ndarray, e: np.ndarray, queries: np.ndarray) -> "Events":
        n = s.shape[0]
        dec = (e > f).astype(np.int64)
        t = np.concatenate([s, f, e, queries])
        dp = np.concatenate([np.ones(n, np.int64), -np.ones(n, np.int64), np.zeros(n + queries.shape[0], np.int64)])
        dd = np.concatenate([np.zeros(n, np.int64), dec, -dec, np.zeros(queries.shape[0], np.int64)])
        o = np.argsort(t, kind="stable")
        return cls(t[o], dp[o], dd[o], o, n)


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
def _sweep(ev_t, ev_dp, ev_dd, ev_order, iv_start, iv_end, bin_lo, coef, price_a, price_i, features, out):
    """One walk over events and intervals. ``features`` (m x F) is filled when ``coef`` is empty;
    else row ``ev_order[i]`` of ``out`` (events x 6) gets, at the ``i``-th event in time, the
    cumulative prefill-active, decode-active, prefill-idle, decode-idle energy and the prefill and
    decode device-seconds one request in that phase has received. Returns the max batch."""
    n_ev, m = ev_t.shape[0], iv_start.shape[0]
    fill = coef.shape[0] == 0
    i = k = 0
    n_pre = n_dec = 0
    max_b = 0
    ga = da = gi = di = ts = td = 0.0
    t = ev_t[0] if n_ev else 0.0
    if m and (n_ev == 0 or iv_start[0] < t):
        t = iv_start[0]
    while i < n_ev:
        while i < n_ev and ev_t[i] <= t:
            if not fill:
                j = ev_order[i]
                out[j, 0], out[j, 1], out[j, 2], out[j, 3], out[j, 4], out[j, 5] = ga, da, gi, di, ts, td
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
                        ts += dur / n_pre
                    else:
                        da += p * price_a[k] / n_dec
                        di += p * price_i[k] / n_dec
                        td += dur / n_dec
        t = nxt
    return max_b


def interval_features(ev: Events, iv_start: np.ndarray, iv_end: np.ndarray) -> tuple[np.ndarray, int]:
    """(intervals x features) device-seconds (prefill, then decode per batch bin), and the largest
    decode batch seen inside the intervals."""
    F = np.zeros((iv_start.shape[0], N_FEATURES))
    max_b = _sweep(ev.t, ev.d_prefill, ev.d_decode, ev.order, iv_start, iv_end, BIN_LO, np.zeros((0, N_FEATURES)),
                   np.zeros(0), np.zeros(0), F, np.zeros((0, 6)))
    return F, int(max_b)


def event_integrals(ev: Events, iv_start: np.ndarray, iv_end: np.ndarray, coef: np.ndarray,
                    price_a: np.ndarray, price_i: np.ndarray) -> np.ndarray:
    """(events x 6) in the unsorted event order: cumulative energy one prefilling request (active,
    idle: columns 0, 2) and one decoding request (1, 3) has received by the event's time, and its
    device-seconds prefilling (4) and decoding (5). A prefilling segment's modelled power (and its
    time) is shared among the requests prefilling, a decoding segment's ``P(b)`` (and its time)
    split ``1/b`` among the ``b`` decoders; ``price_*`` scales each interval's modelled energy to its
    measured active and shared idle energy."""
    out = np.empty((ev.t.shape[0], 6))
    _sweep(ev.t, ev.d_prefill, ev.d_decode, ev.order, iv_start, iv_end, BIN_LO, coef, price_a, price_i,
           np.zeros((0, N_FEATURES)), out)
    return out
