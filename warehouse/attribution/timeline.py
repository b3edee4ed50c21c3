"""The request timeline of a replica: when each request prefilled and decoded.

A request occupies the device while prefilling, ``[s, f)`` (scheduled to first token), and while
decoding, ``[f, e)`` (first token to finish). :class:`PiecewiseRate` integrates a sum of constant
rates on such spans with prefix sums, so the request-seconds of any phase in any interval are two
binary searches away.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def request_spans(sched: np.ndarray, first: np.ndarray, finish: np.ndarray,
                  completion: np.ndarray, min_phase_s: float = 1e-3):
    """Each request's prefill ``[s, f)`` and decode ``[f, e)`` bounds, made well-ordered: a
    phase lasts at least ``min_phase_s``; a request with one completion token has no decode."""
    s = sched
    f = np.maximum(np.maximum(first, s), s + min_phase_s)
    e = np.where(completion > 1, np.maximum(np.maximum(finish, f), f + min_phase_s), f)
    return s, f, e


class PiecewiseRate:
    """Sum of constant rates on [start, end) segments, with prefix sums for O(log n) integrals."""

    def __init__(self, start: np.ndarray, end: np.ndarray, rate: np.ndarray):
        ev_t = np.concatenate([start, end])
        ev_r = np.concatenate([rate, -rate])
        o = np.argsort(ev_t, kind="stable")
        self.ev_t = ev_t[o]
        ev_r = ev_r[o]
        self.R = np.cumsum(ev_r)
        self.S = np.cumsum(ev_r * self.ev_t)

    def cumulative(self, x: np.ndarray) -> np.ndarray:
        j = np.searchsorted(self.ev_t, x, side="right") - 1
        out = np.zeros_like(x)
        ok = j >= 0
        out[ok] = self.R[j[ok]] * x[ok] - self.S[j[ok]]
        return out

    def between(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.maximum(self.cumulative(b) - self.cumulative(a), 0.0)


@dataclass
class ReplicaWork:
    """What a replica's requests were doing over time, relative to ``origin`` (seconds)."""

    origin: float
    s: np.ndarray
    f: np.ndarray
    e: np.ndarray
    prefill: PiecewiseRate
    decoding: PiecewiseRate
    starts_sorted: np.ndarray
    ends_sorted: np.ndarray

    @classmethod
    def build(cls, sched: np.ndarray, first: np.ndarray, finish: np.ndarray,
              completion: np.ndarray) -> "ReplicaWork":
        origin = float(np.nanmin(sched)) if sched.shape[0] else 0.0
        s, f, e = request_spans(sched - origin, first - origin, finish - origin, completion)
        return cls(
            origin, s, f, e,
            PiecewiseRate(s, f, np.ones_like(s)),
            PiecewiseRate(f, e, (completion > 1).astype(np.float64)),
            np.sort(s), np.sort(e),
        )

    def active_count(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Number of requests whose [s, e) overlaps each [a, b), exactly (integers)."""
        started = np.searchsorted(self.starts_sorted, b, side="left")
        ended = np.searchsorted(self.ends_sorted, a, side="right")
        return started - ended

    def subset(self, m: np.ndarray) -> "ReplicaWork":
        return ReplicaWork(self.origin, self.s[m], self.f[m], self.e[m], self.prefill,
                           self.decoding, self.starts_sorted, self.ends_sorted)
