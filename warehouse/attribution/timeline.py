"""The request timeline of a replica: when each request prefilled and decoded.

A request occupies the device while prefilling, ``[s, f)`` (scheduled to first token), and while
decoding, ``[f, e)`` (first token to finish). :mod:`.segments` merges these spans with the
device's sample intervals.
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


@dataclass
class ReplicaWork:
    """A replica's requests as spans relative to ``origin`` (seconds), in the caller's order."""

    origin: float
    s: np.ndarray
    f: np.ndarray
    e: np.ndarray

    @classmethod
    def build(cls, sched: np.ndarray, first: np.ndarray, finish: np.ndarray,
              completion: np.ndarray) -> "ReplicaWork":
        origin = float(np.nanmin(sched)) if sched.shape[0] else 0.0
        s, f, e = request_spans(sched - origin, first - origin, finish - origin, completion)
        return cls(origin, s, f, e)
