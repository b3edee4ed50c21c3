"""Per-request energy attribution by sorted sweeps and prefix sums.

For each device:

1. **Intervals** between consecutive samples (sorted, duplicate timestamps dropped). Energy comes
   from the cumulative counter's delta where it is valid (wraps unwrapped with the chip's counter
   width; a negative or implausible delta is a reset) and from trapezoidal integration of power
   otherwise. Each interval records which source it used. Intervals are split at UTC midnight
   (energy pro rata) so every device-day balances on its own.
2. **Idle versus active**: idle baseline per device learned from intervals with no request running
   (median power), or the catalog's serving idle when the data has too few such intervals.
   ``idle = min(E, idle_w * dt)``, ``active = E - idle``.
3. **Work** of the replica at any instant is a piecewise-constant rate: a request contributes
   ``prefill_weight * prompt_tokens / prefill_s`` while prefilling ``[scheduled, first_token)`` and
   ``completion_tokens - 1`` decode tokens spread over ``[first_token, finish)``. The replica's
   cumulative work ``W(t) = R(t) t - S(t)`` comes from prefix sums over the sorted rate changes, so
   the work in every interval is two binary searches away.
4. **Price per unit of work** per interval, ``pi_i = active_i / W_i`` (and the same for idle).
   Its time integral ``P(t)`` is again a prefix sum; a request's energy is
   ``rate_prefill * (P(first) - P(sched)) + rate_decode * (P(finish) - P(first))``. No request is
   ever joined to a sample: time is O((samples + requests) log n) and memory is linear.

Conservation holds by construction: per device-day, active energy of intervals with work goes to
requests, their idle energy is shared, and intervals with no work are unused capacity. The request
side is summed independently per device-day so the identity can be checked.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numba
import numpy as np
import yaml

DAY_S = 86400.0
WEIGHTS_FILE = Path(__file__).parent / "attribution.yaml"


@dataclass
class AttributionConfig:
    prefill_power_weight: float = 1.7
    decode_power_weight: float = 1.0
    chip_overrides: dict = field(default_factory=dict)
    min_idle_intervals: int = 20
    gap_factor: float = 5.0
    max_power_factor: float = 1.6

    @classmethod
    def load(cls, path: Path | None = None) -> "AttributionConfig":
        data = yaml.safe_load((path or WEIGHTS_FILE).read_text()) or {}
        return cls(
            prefill_power_weight=float(data.get("prefill_power_weight", 1.7)),
            decode_power_weight=float(data.get("decode_power_weight", 1.0)),
            chip_overrides=data.get("chips", {}) or {},
            min_idle_intervals=int(data.get("min_idle_intervals", 20)),
            gap_factor=float(data.get("gap_factor", 5.0)),
            max_power_factor=float(data.get("max_power_factor", 1.6)),
        )

    def weights(self, chip: str) -> tuple[float, float]:
        o = self.chip_overrides.get(chip, {})
        return (float(o.get("prefill_power_weight", self.prefill_power_weight)),
                float(o.get("decode_power_weight", self.decode_power_weight)))


@dataclass
class DeviceIntervals:
    """Intervals of one device, split at UTC midnight."""

    start: np.ndarray
    end: np.ndarray
    energy_j: np.ndarray
    source: np.ndarray  # 0 counter, 1 integrated
    gap: np.ndarray  # bool
    resets: int


def device_intervals(ts: np.ndarray, power_w: np.ndarray, counter_j: np.ndarray, rated_w: float,
                     wrap_j: float | None, cfg: AttributionConfig) -> DeviceIntervals:
    """Energy per interval between consecutive samples (``ts`` in seconds, any order, duplicates ok)."""
    order = np.argsort(ts, kind="stable")
    ts, power_w, counter_j = ts[order], power_w[order], counter_j[order]
    if ts.shape[0]:
        keep = np.concatenate([[True], np.diff(ts) > 0])
        ts, power_w, counter_j = ts[keep], power_w[keep], counter_j[keep]
    if ts.shape[0] < 2:
        z = np.zeros(0)
        return DeviceIntervals(z, z, z, np.zeros(0, np.int8), np.zeros(0, bool), 0)
    dt = np.diff(ts)
    p = np.nan_to_num(power_w, nan=np.nan)
    # power: fill missing readings from neighbours before integrating
    if np.isnan(p).any():
        good = ~np.isnan(p)
        p = np.interp(ts, ts[good], p[good]) if good.any() else np.zeros_like(p)
    integ = 0.5 * (p[:-1] + p[1:]) * dt
    d = np.diff(counter_j)
    valid = ~np.isnan(d)
    if wrap_j:
        wrapped = valid & (d < 0) & (counter_j[:-1] > 0.5 * wrap_j)
        d = np.where(wrapped, d + wrap_j, d)
    resets = int(np.count_nonzero(valid & (d < 0)))
    plausible = valid & (d >= 0) & (d <= rated_w * cfg.max_power_factor * dt)
    energy = np.where(plausible, d, integ)
    source = np.where(plausible, 0, 1).astype(np.int8)
    med = float(np.median(dt))
    gap = dt > max(cfg.gap_factor * med, 2.0 * med + 1.0)
    # split at midnights
    start, end = ts[:-1], ts[1:]
    d0, d1 = np.floor(start / DAY_S), np.floor(end / DAY_S)
    cross = d1 > d0
    if cross.any():
        idx = np.nonzero(cross)[0]
        mids = (d0[idx] + 1) * DAY_S
        frac = (mids - start[idx]) / (end[idx] - start[idx])
        # piece before midnight stays at idx; after-midnight pieces appended, then re-sorted
        new_start = mids
        new_end = end[idx].copy()
        new_energy = energy[idx] * (1 - frac)
        end = end.copy()
        energy = energy.copy()
        end[idx] = mids
        energy[idx] = energy[idx] * frac
        start = np.concatenate([start, new_start])
        end = np.concatenate([end, new_end])
        energy = np.concatenate([energy, new_energy])
        source = np.concatenate([source, source[idx]])
        gap = np.concatenate([gap, gap[idx]])
        o = np.argsort(start, kind="stable")
        start, end, energy, source, gap = start[o], end[o], energy[o], source[o], gap[o]
    return DeviceIntervals(start, end, energy, source, gap, resets)


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
    """What a replica's requests were doing over time, relative to ``origin`` (seconds).

    A request occupies the device while prefilling, ``[s, f)`` (scheduled to first token), and
    while decoding, ``[f, e)`` (first token to finish). Decode is continuous batching: every
    running request advances one token per step, so within an interval the decoding requests
    share the decode energy equally per second; the split between the two phases weighs
    device-seconds by the phase power weights (``attribution.yaml``).
    """

    origin: float
    s: np.ndarray
    f: np.ndarray
    e: np.ndarray
    rate_p: np.ndarray
    prefill: PiecewiseRate
    decoding: PiecewiseRate
    starts_sorted: np.ndarray
    ends_sorted: np.ndarray

    @classmethod
    def build(cls, sched: np.ndarray, first: np.ndarray, finish: np.ndarray,
              completion: np.ndarray) -> "ReplicaWork":
        origin = float(np.nanmin(sched)) if sched.shape[0] else 0.0
        s, f, e = request_spans(sched - origin, first - origin, finish - origin, completion)
        rate_p = np.ones_like(s)
        return cls(
            origin, s, f, e, rate_p,
            PiecewiseRate(s, f, rate_p),
            PiecewiseRate(f, e, (completion > 1).astype(np.float64)),
            np.sort(s), np.sort(e),
        )

    def active_count(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Number of requests whose [s, e) overlaps each [a, b), exactly (integers)."""
        started = np.searchsorted(self.starts_sorted, b, side="left")
        ended = np.searchsorted(self.ends_sorted, a, side="right")
        return started - ended

    def subset(self, m: np.ndarray) -> "ReplicaWork":
        return ReplicaWork(self.origin, self.s[m], self.f[m], self.e[m], self.rate_p[m], self.prefill,
                           self.decoding, self.starts_sorted, self.ends_sorted)


@dataclass
class DeviceResult:
    interval_day: np.ndarray  # int day number of each interval
    measured_j: np.ndarray
    active_attr_j: np.ndarray
    idle_shared_j: np.ndarray
    unused_j: np.ndarray
    source: np.ndarray
    gap: np.ndarray
    duration_s: np.ndarray
    idle_w: float
    idle_source: str
    resets: int
    req_active_j: np.ndarray  # per request of the replica
    req_idle_j: np.ndarray
    req_day_active: dict  # day -> request-side active sum
    req_day_idle: dict


def attribute_device(iv: DeviceIntervals, work: ReplicaWork | None, catalog_idle_w: float,
                     cfg: AttributionConfig, weights: tuple[float, float] = (1.7, 1.0)) -> DeviceResult:
    n_req = work.s.shape[0] if work is not None else 0
    if iv.start.shape[0] == 0:
        z = np.zeros(0)
        return DeviceResult(np.zeros(0, np.int64), z, z, z, z, np.zeros(0, np.int8), np.zeros(0, bool), z,
                            catalog_idle_w, "catalog", iv.resets, np.zeros(n_req), np.zeros(n_req), {}, {})
    dur = iv.end - iv.start
    w_prefill, w_decode = weights
    if work is not None and n_req:
        a = iv.start - work.origin
        b = iv.end - work.origin
        Tp = work.prefill.between(a, b)
        Nd = work.decoding.between(a, b)
        # decode occupies the device whenever a request decodes and no prefill runs; the sum of
        # decoding request-seconds bounds that time from above and equals it for a lone request
        Td = np.minimum(np.maximum(dur - Tp, 0.0), Nd)
        Wp = w_prefill * Tp
        Wd = w_decode * Td
        busy = (work.active_count(a, b) > 0) & ((Tp + Nd) > 0)
    else:
        Wp = Wd = Nd = Tp = np.zeros_like(dur)
        busy = np.zeros(dur.shape[0], bool)
    # idle baseline: learned from short, request-free intervals
    quiet = (~busy) & (~iv.gap) & (dur > 0)
    if np.count_nonzero(quiet) >= cfg.min_idle_intervals:
        idle_w = float(np.median(iv.energy_j[quiet] / dur[quiet]))
        idle_source = "learned"
    else:
        idle_w = catalog_idle_w
        idle_source = "catalog"
    E = iv.energy_j
    idle = np.maximum(np.minimum(E, idle_w * dur), 0.0)
    active = E - idle
    active_attr = np.where(busy, active, 0.0)
    idle_shared = np.where(busy, idle, 0.0)
    unused = np.where(busy, 0.0, E)
    day = np.floor(iv.start / DAY_S).astype(np.int64)
    req_a = np.zeros(n_req)
    req_i = np.zeros(n_req)
    day_a: dict = {}
    day_i: dict = {}
    if n_req and busy.any():
        denom = Wp + Wd
        with np.errstate(divide="ignore", invalid="ignore"):
            dec_share = np.where(denom > 0, Wd / denom, np.where(Nd > 0, 1.0, 0.0))
            dec_share = np.where(Tp <= 0, np.where(Nd > 0, 1.0, 0.0), dec_share)
            dec_share = np.where(Nd <= 0, 0.0, dec_share)
            pre_share = 1.0 - dec_share
            # price per second of a prefilling request, and per second of a decoding request
            pp_a = np.where(busy & (Tp > 0), active * pre_share / Tp, 0.0)
            pd_a = np.where(busy & (Nd > 0), active * dec_share / Nd, 0.0)
            pp_i = np.where(busy & (Tp > 0), idle * pre_share / Tp, 0.0)
            pd_i = np.where(busy & (Nd > 0), idle * dec_share / Nd, 0.0)
        starts = iv.start - work.origin
        ends = iv.end - work.origin
        seg = ends - starts

        def prefix(price):
            return np.concatenate([[0.0], np.cumsum(price * seg)])

        P = {k: (prefix(v), v) for k, v in (("pa", pp_a), ("da", pd_a), ("pi", pp_i), ("di", pd_i))}

        Pa, Da, Pi, Di = P["pa"][0], P["da"][0], P["pi"][0], P["di"][0]

        def energy_pair(w: ReplicaWork, lo=None, hi=None):
            s, f, e = w.s, w.f, w.e
            if lo is not None:
                s, f, e = np.clip(s, lo, hi), np.clip(f, lo, hi), np.clip(e, lo, hi)
            return _request_energies(starts, seg, Pa, pp_a, Da, pd_a, Pi, pp_i, Di, pd_i, s, f, e, w.rate_p)

        req_a, req_i = energy_pair(work)
        # request side per device-day (requests crossing midnight are split there)
        abs_s = work.s + work.origin
        abs_e = work.e + work.origin
        ds = np.floor(abs_s / DAY_S).astype(np.int64)
        de = np.maximum(np.floor(np.nextafter(abs_e, -np.inf) / DAY_S).astype(np.int64), ds)
        same = ds == de
        if same.any():
            u, inv = np.unique(ds[same], return_inverse=True)
            sa = np.bincount(inv, weights=req_a[same])
            si = np.bincount(inv, weights=req_i[same])
            for k, dd in enumerate(u):
                day_a[int(dd)] = day_a.get(int(dd), 0.0) + float(sa[k])
                day_i[int(dd)] = day_i.get(int(dd), 0.0) + float(si[k])
        if (~same).any():
            for dd in np.unique(np.concatenate([ds[~same], de[~same]])):
                m = (~same) & (ds <= dd) & (de >= dd)
                lo = dd * DAY_S - work.origin
                hi = (dd + 1) * DAY_S - work.origin
                ea, ei = energy_pair(work.subset(m), lo, hi)
                day_a[int(dd)] = day_a.get(int(dd), 0.0) + float(ea.sum())
                day_i[int(dd)] = day_i.get(int(dd), 0.0) + float(ei.sum())
    return DeviceResult(day, E, active_attr, idle_shared, unused, iv.source, iv.gap, dur, idle_w, idle_source,
                        iv.resets, req_a, req_i, day_a, day_i)


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
def _request_energies(starts, seg, Pa, pa, Da, da, Pi, pi, Di, di, s, f, e, rate_p):
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
        ea[j] = rate_p[j] * (paf - pas) + (dae - daf)
        ei[j] = rate_p[j] * (pif - pis) + (die - dif)
    return ea, ei
