"""Split a device's measured energy among the requests of its replica, interval by interval.

1. **Idle versus active**: idle baseline per device learned from intervals with no request running
   (median power), or the catalog's serving idle when the data has too few such intervals.
   ``idle = min(E, idle_w * dt)``, ``active = E - idle``.
2. **Price per request-second** of each phase per interval: the interval's energy is split between
   prefill and decode by device-seconds weighted by the phase power weights, then shared among the
   requests in that phase. Its time integral is a prefix sum, so a request's energy is a few
   lookups (:mod:`warehouse.attribution.sweep`). No request is ever joined to a sample.

Conservation holds by construction: per device-day, active energy of intervals with work goes to
requests, their idle energy is shared, and intervals with no work are unused capacity. The request
side is summed independently per device-day so the identity can be checked.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from collectors.units import DAY_S
from warehouse.attribution.config import AttributionConfig
from warehouse.attribution.intervals import DeviceIntervals
from warehouse.attribution.sweep import _request_energies
from warehouse.attribution.timeline import ReplicaWork


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


def idle_baseline(iv: DeviceIntervals, busy: np.ndarray, catalog_idle_w: float,
                  cfg: AttributionConfig) -> tuple[float, str]:
    """Median power of short, request-free intervals, or the catalog's idle when too few exist."""
    dur = iv.end - iv.start
    quiet = (~busy) & (~iv.gap) & (dur > 0)
    if np.count_nonzero(quiet) >= cfg.min_idle_intervals:
        return float(np.median(iv.energy_j[quiet] / dur[quiet])), "learned"
    return catalog_idle_w, "catalog"


def _phase_prices(active, idle, busy, Tp, Nd, Td, weights):
    """Per interval: price per prefilling and per decoding request-second, active and idle."""
    Wp, Wd = weights[0] * Tp, weights[1] * Td
    denom = Wp + Wd
    with np.errstate(divide="ignore", invalid="ignore"):
        dec_share = np.where(denom > 0, Wd / denom, np.where(Nd > 0, 1.0, 0.0))
        dec_share = np.where(Tp <= 0, np.where(Nd > 0, 1.0, 0.0), dec_share)
        dec_share = np.where(Nd <= 0, 0.0, dec_share)
        pre_share = 1.0 - dec_share
        pp_a = np.where(busy & (Tp > 0), active * pre_share / Tp, 0.0)
        pd_a = np.where(busy & (Nd > 0), active * dec_share / Nd, 0.0)
        pp_i = np.where(busy & (Tp > 0), idle * pre_share / Tp, 0.0)
        pd_i = np.where(busy & (Nd > 0), idle * dec_share / Nd, 0.0)
    return pp_a, pd_a, pp_i, pd_i


def _request_side(iv: DeviceIntervals, work: ReplicaWork, prices) -> tuple:
    """Energies per request, and the request side summed per UTC day (requests crossing midnight
    are clipped to each day)."""
    starts = iv.start - work.origin
    seg = iv.end - iv.start
    cum = [np.concatenate([[0.0], np.cumsum(p * seg)]) for p in prices]
    pp_a, pd_a, pp_i, pd_i = prices

    def energy(w: ReplicaWork, lo=None, hi=None):
        s, f, e = w.s, w.f, w.e
        if lo is not None:
            s, f, e = np.clip(s, lo, hi), np.clip(f, lo, hi), np.clip(e, lo, hi)
        return _request_energies(starts, seg, cum[0], pp_a, cum[1], pd_a, cum[2], pp_i, cum[3], pd_i, s, f, e)

    req_a, req_i = energy(work)
    day_a: dict = {}
    day_i: dict = {}
    abs_s, abs_e = work.s + work.origin, work.e + work.origin
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
    for dd in (np.unique(np.concatenate([ds[~same], de[~same]])) if (~same).any() else []):
        m = (~same) & (ds <= dd) & (de >= dd)
        ea, ei = energy(work.subset(m), dd * DAY_S - work.origin, (dd + 1) * DAY_S - work.origin)
        day_a[int(dd)] = day_a.get(int(dd), 0.0) + float(ea.sum())
        day_i[int(dd)] = day_i.get(int(dd), 0.0) + float(ei.sum())
    return req_a, req_i, day_a, day_i


def attribute_device(iv: DeviceIntervals, work: ReplicaWork | None, catalog_idle_w: float,
                     cfg: AttributionConfig, weights: tuple[float, float] = (1.7, 1.0)) -> DeviceResult:
    n_req = work.s.shape[0] if work is not None else 0
    if iv.start.shape[0] == 0:
        z = np.zeros(0)
        return DeviceResult(np.zeros(0, np.int64), z, z, z, z, np.zeros(0, np.int8), np.zeros(0, bool), z,
                            catalog_idle_w, "catalog", iv.resets, np.zeros(n_req), np.zeros(n_req), {}, {})
    dur = iv.end - iv.start
    if work is not None and n_req:
        a, b = iv.start - work.origin, iv.end - work.origin
        Tp = work.prefill.between(a, b)
        Nd = work.decoding.between(a, b)
        # decode occupies the device whenever a request decodes and no prefill runs; the sum of
        # decoding request-seconds bounds that time from above and equals it for a lone request
        Td = np.minimum(np.maximum(dur - Tp, 0.0), Nd)
        busy = (work.active_count(a, b) > 0) & ((Tp + Nd) > 0)
    else:
        Tp = Nd = Td = np.zeros_like(dur)
        busy = np.zeros(dur.shape[0], bool)
    idle_w, idle_source = idle_baseline(iv, busy, catalog_idle_w, cfg)
    E = iv.energy_j
    idle = np.maximum(np.minimum(E, idle_w * dur), 0.0)
    active = E - idle
    day = np.floor(iv.start / DAY_S).astype(np.int64)
    req_a, req_i, day_a, day_i = np.zeros(n_req), np.zeros(n_req), {}, {}
    if n_req and busy.any():
        prices = _phase_prices(active, idle, busy, Tp, Nd, Td, weights)
        req_a, req_i, day_a, day_i = _request_side(iv, work, prices)
    return DeviceResult(day, E, np.where(busy, active, 0.0), np.where(busy, idle, 0.0), np.where(busy, 0.0, E),
                        iv.source, iv.gap, dur, idle_w, idle_source, iv.resets, req_a, req_i, day_a, day_i)
