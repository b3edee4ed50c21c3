"""Split a device's measured energy among the requests of its replica, interval by interval.

1. **Idle versus active**: idle baseline per device learned from intervals with no request running
   (median power), or the catalog's serving idle when the data has too few such intervals.
   ``idle = min(E, idle_w * dt)``, ``active = E - idle``. Idle is shared for the time some
   request was on the device, counted in whole cells of ``idle_share_grain_s`` on the UTC grid
   (:mod:`.occupancy`); the rest is unused capacity.
2. **Modelled power** of every moment: the device's time is cut into segments on which the
   request timeline does not change (:mod:`.segments`): prefilling, or decoding with batch ``b``.
   Each has a power from the device-day's learned model (:mod:`.power_model`), or from the flat
   phase weights when the fit fell back (the per-step share). An interval's measured active (and
   shared idle) energy is split in proportion to modelled power: prefill power shared among the
   prefilling requests, decode power ``P(b)`` split ``1/b`` among the decoders. With flat weights a
   decoding request's share is the integral of ``1/b(t)`` over its decode time.
3. Per request the energy is a difference of prefix sums over the segments: no request is ever
   joined to a sample, and everything is sorting and ``searchsorted``.

Conservation holds by construction: per device-day, active energy of intervals with work goes to
requests, their idle energy is shared or unused, and intervals with no work are unused capacity.
The request side is summed independently per device-day so the identity can be checked.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from collectors.units import DAY_S
from warehouse.attribution.config import AttributionConfig
from warehouse.attribution.intervals import DeviceIntervals
from warehouse.attribution.occupancy import occupied_s
from warehouse.attribution.power_model import fit_power_model, step_share_coef
from warehouse.attribution.segments import Events, event_integrals, interval_features
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
    fits: list  # (day, PowerFit, learned prefill/decode ratio) per UTC day with work
    req_prefill_j: np.ndarray | None = None  # per request: the part of req_active_j from its prefill phase
    req_phase_s: np.ndarray | None = None  # per request: (prefill, decode) device-seconds on this device


def idle_baseline(iv: DeviceIntervals, busy: np.ndarray, catalog_idle_w: float,
                  cfg: AttributionConfig) -> tuple[float, str]:
    """Median power of short, request-free intervals, or the catalog's idle when too few exist."""
    dur = iv.end - iv.start
    quiet = (~busy) & (~iv.gap) & (dur > 0)
    if np.count_nonzero(quiet) >= cfg.min_idle_intervals:
        return float(np.median(iv.energy_j[quiet] / dur[quiet])), "learned"
    return catalog_idle_w, "catalog"


def price_windows(iv: DeviceIntervals, day: np.ndarray, window_s: float) -> np.ndarray:
    """Window index of each interval: consecutive intervals of a UTC day grouped into windows of at
    least ``window_s`` (an interval that long is its own window)."""
    cell = np.floor((iv.start - day * DAY_S) / max(window_s, 1e-9)).astype(np.int64)
    return _runs(np.stack([day, cell], axis=1))


def _runs(key: np.ndarray) -> np.ndarray:
    """Run index of each element of a sorted (n,) or (n, k) key: where consecutive keys differ."""
    if key.shape[0] == 0:
        return np.zeros(0, np.int64)
    change = np.diff(key, axis=0) != 0
    change = change.any(axis=1) if change.ndim == 2 else change
    return np.concatenate([[0], np.cumsum(change)]).astype(np.int64)


def _window_sum(wid: np.ndarray, x: np.ndarray) -> np.ndarray:
    n = int(wid.max()) + 1 if wid.shape[0] else 0
    if x.ndim == 1:
        return np.bincount(wid, weights=x, minlength=n)
    return np.stack([np.bincount(wid, weights=x[:, j], minlength=n) for j in range(x.shape[1])], axis=1)


def _coefficients(iv: DeviceIntervals, F: np.ndarray, active: np.ndarray, busy: np.ndarray, day: np.ndarray,
                  wid: np.ndarray, max_batch: int, cfg: AttributionConfig, weights) -> tuple[np.ndarray, list]:
    """Per interval, the modelled power of each feature: the day's learned model (fitted on the
    price windows' sums), else the step share."""
    coef = np.empty_like(F)
    fits = []
    use = busy & (~iv.gap) & (iv.end > iv.start)
    for d in np.unique(day):
        m = (day == d) & use
        w = _runs(wid[m])  # intervals are sorted, so are their windows
        Fw, yw = _window_sum(w, F[m]), _window_sum(w, active[m])
        fit = fit_power_model(Fw, yw, np.ones(yw.shape[0], bool), cfg.power_model, weights, max_batch)
        coef[day == d] = fit.coef_w
        fits.append((int(d), fit, fit.prefill_decode_ratio(F[m])))
    modelled = (coef * F).sum(axis=1)
    flat = busy & ~(modelled > 0)  # the model gives this interval's work no power: share it per step
    if flat.any():
        coef[flat] = step_share_coef(weights)
    return coef, fits


def _prices(wid, busy, active, idle_sh, modelled):
    """Joules per modelled joule, active and shared idle, per price window (so per interval)."""
    mod_w = _window_sum(wid, np.where(busy, modelled, 0.0))
    act_w = _window_sum(wid, np.where(busy, active, 0.0))
    idle_w = _window_sum(wid, idle_sh)
    with np.errstate(divide="ignore", invalid="ignore"):
        pa = np.where(mod_w > 0, act_w / mod_w, 0.0)
        pi = np.where(mod_w > 0, idle_w / mod_w, 0.0)
    return np.where(busy, pa[wid], 0.0), np.where(busy, pi[wid], 0.0)


def _request_side(ev: Events, iv: DeviceIntervals, work: ReplicaWork, coef: np.ndarray, price_a: np.ndarray,
                  price_i: np.ndarray, days: np.ndarray) -> tuple:
    """Energies per request, and the request side summed per UTC day (requests crossing midnight
    are clipped to each day, whose bounds are the events after the requests')."""
    G = event_integrals(ev, iv.start - work.origin, iv.end - work.origin, coef, price_a, price_i)
    n = ev.n
    gs, gf, ge = G[:n], G[n:2 * n], G[2 * n:3 * n]

    def energy(gs, gf, ge):
        return (gf[:, 0] - gs[:, 0]) + (ge[:, 1] - gf[:, 1]), (gf[:, 2] - gs[:, 2]) + (ge[:, 3] - gf[:, 3])

    req_a, req_i = energy(gs, gf, ge)
    req_p = gf[:, 0] - gs[:, 0]  # the prefill phase's part of req_a (the rest is decode)
    # device-seconds per phase, from the same sweep (a prefill segment's time shared among the
    # prefilling requests, a decode segment's 1/b among the b decoders)
    req_s = np.stack([gf[:, 4] - gs[:, 4], ge[:, 5] - gf[:, 5]], axis=1)
    day_a: dict = {}
    day_i: dict = {}
    for q, dd in enumerate(days):
        lo, hi = dd * DAY_S - work.origin, (dd + 1) * DAY_S - work.origin
        g_lo, g_hi = G[3 * n + 2 * q], G[3 * n + 2 * q + 1]
        inside = (work.s >= lo) & (work.e <= hi)
        cross = ~inside & (work.s < hi) & (work.e > lo)

        def clip(x, g):  # the integrals at a request's times clipped to [lo, hi]
            x, g = x[cross], g[cross]
            return np.where((x < lo)[:, None], g_lo, np.where((x > hi)[:, None], g_hi, g))

        ca, ci = energy(clip(work.s, gs), clip(work.f, gf), clip(work.e, ge))
        day_a[int(dd)] = float(req_a[inside].sum()) + float(ca.sum())
        day_i[int(dd)] = float(req_i[inside].sum()) + float(ci.sum())
    return req_a, req_i, day_a, day_i, req_p, req_s


def attribute_device(iv: DeviceIntervals, work: ReplicaWork | None, catalog_idle_w: float,
                     cfg: AttributionConfig, weights: tuple[float, float] = (1.7, 1.0)) -> DeviceResult:
    n_req = work.s.shape[0] if work is not None else 0
    if iv.start.shape[0] == 0:
        z = np.zeros(0)
        return DeviceResult(np.zeros(0, np.int64), z, z, z, z, np.zeros(0, np.int8), np.zeros(0, bool), z,
                            catalog_idle_w, "catalog", iv.resets, np.zeros(n_req), np.zeros(n_req), {}, {}, [])
    dur = iv.end - iv.start
    m = dur.shape[0]
    day = np.floor(iv.start / DAY_S).astype(np.int64)
    days = np.unique(day)
    if n_req:
        bounds = np.stack([days * DAY_S, (days + 1) * DAY_S], axis=1).ravel() - work.origin
        ev = Events.build(work.s, work.f, work.e, bounds.astype(np.float64))
        F, max_batch = interval_features(ev, iv.start - work.origin, iv.end - work.origin)
        busy = F.sum(axis=1) > 0
    else:
        busy = np.zeros(m, bool)
    idle_w, idle_source = idle_baseline(iv, busy, catalog_idle_w, cfg)
    E = iv.energy_j
    idle = np.maximum(np.minimum(E, idle_w * dur), 0.0)
    active = E - idle
    # idle energy is shared for the seconds some request was on the device; the rest of a busy
    # interval's idle is unused capacity, as a request-free interval's is
    if n_req:
        occ = occupied_s(work.s, work.e, iv.start - work.origin, iv.end - work.origin, cfg.idle_share_grain_s,
                         grid_offset_s=work.origin)
        with np.errstate(divide="ignore", invalid="ignore"):
            present = np.where(dur > 0, np.minimum(occ / dur, 1.0), 1.0)
        idle_sh = np.where(busy, idle * present, 0.0)
    else:
        idle_sh = np.zeros(m)
    req_a, req_i, req_p, day_a, day_i, fits = np.zeros(n_req), np.zeros(n_req), np.zeros(n_req), {}, {}, []
    req_s = np.zeros((n_req, 2))
    if n_req and busy.any():
        wid = price_windows(iv, day, cfg.power_model.price_window_s)
        coef, fits = _coefficients(iv, F, active, busy, day, wid, max_batch, cfg, weights)
        price_a, price_i = _prices(wid, busy, active, idle_sh, (coef * F).sum(axis=1))
        req_a, req_i, day_a, day_i, req_p, req_s = _request_side(ev, iv, work, coef, price_a, price_i, days)
    return DeviceResult(day, E, np.where(busy, active, 0.0), idle_sh, np.where(busy, idle - idle_sh, E),
                        iv.source, iv.gap, dur, idle_w, idle_source, iv.resets, req_a, req_i, day_a, day_i, fits,
                        req_p, req_s)
