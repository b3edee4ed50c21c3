"""Compiled sweeps over a replica's requests: per request, price integrals by prefix sums.

Requests arrive sorted by start and last seconds to minutes, so each of a request's timestamps is
found by galloping from the previous one: the sweep is close to linear in requests + intervals.
"""
from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True)
def _bisect_last_le(starts, x, lo, hi):
    """Last index in [lo, hi) with starts <= x, given starts[lo] <= x (and starts[hi] > x if hi < len)."""
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if starts[mid] <= x:
            lo = mid
        else:
            hi = mid
    return lo


@numba.njit(cache=True)
def _gallop(starts, x, hint):
    """Index of the last start <= x (or -1), searching outward from ``hint``.

    Requests arrive sorted by start and last seconds to minutes, so the answer is almost always a
    few intervals from the hint: exponential search makes each lookup O(log distance).
    """
    m = starts.shape[0]
    if m == 0 or x < starts[0]:
        return -1
    h = min(max(hint, 0), m - 1)
    step = 1
    if starts[h] <= x:  # gallop forward, then bisect [lo, hi)
        lo = h
        hi = h + step
        while hi < m and starts[hi] <= x:
            lo = hi
            step *= 2
            hi = lo + step
        return _bisect_last_le(starts, x, lo, min(hi, m))
    hi = h  # gallop backward
    lo = h - step
    while lo > 0 and starts[lo] > x:
        hi = lo
        step *= 2
        lo = hi - step
    lo = max(lo, 0)
    if starts[lo] > x:
        return -1
    return _bisect_last_le(starts, x, lo, hi)


@numba.njit(cache=True)
def _request_energies(starts, seg, Pa, pa, Da, da, Pi, pi, Di, di, s, f, e):
    """Per request: prefill price integrated over [s, f) plus decode price over [f, e).

    One pass over the requests (sorted by start), both energy channels at once; each timestamp is
    found by galloping from the previous one, so the sweep is close to linear.
    """
    n = s.shape[0]
    ea = np.empty(n)
    ei = np.empty(n)
    hint = 0
    for j in range(n):
        ks = _gallop(starts, s[j], hint)
        if ks >= 0:
            hint = ks
        kf = _gallop(starts, f[j], hint)
        ke = _gallop(starts, e[j], kf if kf >= 0 else hint)
        pas = paf = daf = dae = pis = pif = dif = die = 0.0
        if ks >= 0:
            w = min(s[j] - starts[ks], seg[ks])
            pas = Pa[ks] + pa[ks] * w
            pis = Pi[ks] + pi[ks] * w
        if kf >= 0:
            w = min(f[j] - starts[kf], seg[kf])
            paf = Pa[kf] + pa[kf] * w
            daf = Da[kf] + da[kf] * w
            pif = Pi[kf] + pi[kf] * w
            dif = Di[kf] + di[kf] * w
        if ke >= 0:
            w = min(e[j] - starts[ke], seg[ke])
            dae = Da[ke] + da[ke] * w
            die = Di[ke] + di[ke] * w
        ea[j] = (paf - pas) + (dae - daf)
        ei[j] = (pif - pis) + (die - dif)
    return ea, ei
