"""Attribute one replica (or one node's clock skew) day by day, from that day's data only."""
from __future__ import annotations

import numpy as np

from collectors.units import DAY_S
from warehouse.attribution.clock_skew import estimate_day, should_correct
from warehouse.attribution.config import AttributionConfig, SkewConfig
from warehouse.attribution.intervals import day_intervals, device_intervals
from warehouse.attribution.split import attribute_device
from warehouse.attribution.tables import date_of
from warehouse.attribution.timeline import ReplicaWork, request_spans


def chip_params(chips: dict, chip: str) -> tuple[float, float | None, float]:
    """Rated power, counter wrap and serving idle (W) of a chip from the catalog."""
    spec = chips.get(chip, {})
    rated = float(spec.get("rated_power_w", 1000.0))
    wrap = (spec.get("sensor") or {}).get("counter_wrap_j")
    idle_cat = float(spec.get("idle_power_w", 0.1 * rated)) + float(spec.get("model_loaded_idle_extra_w", 0.0))
    return rated, wrap, idle_cat


def day_slice(t: np.ndarray, day: int, shift_s: float = 0.0) -> tuple[int, int, np.ndarray | None]:
    """Rows [a, b) of a device's sorted samples stamped on ``day``; with a clock correction, the
    mask of those rows whose corrected time (``t - shift_s``) stays inside the day (the day's edges
    are then extrapolated as for any day), else None. Days own samples by their stamped time, so a
    day's result never depends on which other days are attributed with it."""
    d0, d1 = day * DAY_S, (day + 1) * DAY_S
    a, b = np.searchsorted(t, [d0, d1], side="left")
    if not shift_s:
        return int(a), int(b), None
    tt = t[a:b] - shift_s
    return int(a), int(b), (tt >= d0) & (tt < d1)


def estimate_node_skew(replicas: list, days: list[int], cfg: AttributionConfig, skew_cfg: SkewConfig,
                       chips: dict) -> tuple[dict, dict]:
    """Clock skew of one node per day, from its replicas' requests and their devices' samples.

    ``replicas``: (rq, devices) per replica of the node, as :func:`attribute_days` takes them.
    Returns ({day: SkewEstimate}, {(device_id, day): DeviceIntervals}) - the intervals, computed
    on the uncorrected samples, are reused by the attribution of the days left uncorrected.
    """
    estimates: dict = {}
    cache: dict = {}
    weights = (cfg.prefill_power_weight, cfg.decode_power_weight)
    spans = []
    for rq, devs in replicas:
        n = rq["s"].shape[0] if rq is not None else 0
        spans.append(request_spans(rq["s"], rq["f"], rq["e"], rq["c"]) if n else None)
    for day in days:
        d0, d1 = day * DAY_S, (day + 1) * DAY_S
        inputs = []
        for (rq, devs), sp in zip(replicas, spans):
            if sp is None:
                continue
            idx = np.nonzero((sp[0] < d1) & (sp[2] > d0))[0]
            ivs = []
            for dev_id, t, p, c, chip in devs:
                a, b, _ = day_slice(t, day)
                if b - a < 2:
                    continue
                rated, wrap, _ = chip_params(chips, chip)
                iv = device_intervals(t[a:b], p[a:b], c[a:b], rated, wrap, cfg)
                cache[(dev_id, day)] = iv
                ivs.append(iv)
            if idx.shape[0] and ivs:
                inputs.append((sp[0][idx], sp[1][idx], sp[2][idx], rq["c"][idx], ivs))
        est = estimate_day(inputs, day, skew_cfg, weights) if inputs else None
        if est is not None:
            est.applied = should_correct(est, skew_cfg)
            estimates[day] = est
    return estimates, cache


def _device_day_row(res, day: int, dev_id: str, chip: str, rid: str | None) -> tuple:
    dur = res.duration_s
    return (date_of(day), dev_id, chip, rid,
            float(res.measured_j.sum()), float(res.active_attr_j.sum()), float(res.idle_shared_j.sum()),
            float(res.unused_j.sum()),
            float(res.req_day_active.get(int(day), 0.0)), float(res.req_day_idle.get(int(day), 0.0)),
            int(np.count_nonzero(res.source == 0)), int(np.count_nonzero(res.source == 1)),
            float(dur[res.gap].sum()), float(dur.sum()), int(res.resets), float(res.idle_w), res.idle_source)


def _power_rows(res, dev_id: str, chip: str, model: str | None, rid: str | None) -> list:
    rows = []
    for day, fit, ratio in res.fits:
        rows.append((date_of(day), dev_id, chip, model, rid, "power_model" if fit.learned else "step_share",
                     *[float(c) for c in fit.coef_w], ratio if fit.learned else None, fit.r2, fit.intervals,
                     fit.max_batch, fit.fallback_reason))
    return rows


def _intervals_of_day(dev, day: int, shift: float, chips: dict, cfg: AttributionConfig, cache: dict):
    dev_id, t, p, c, chip = dev
    a, b, keep = day_slice(t, day, shift)
    rated, wrap, _ = chip_params(chips, chip)
    if keep is None:
        if b - a < 2:
            return None
        return day_intervals(t[a:b], p[a:b], c[a:b], day, rated, wrap, cfg, cache.get((dev_id, day)))
    if np.count_nonzero(keep) < 2:
        return None
    return day_intervals(t[a:b][keep] - shift, p[a:b][keep], c[a:b][keep], day, rated, wrap, cfg)


def attribute_days(rq: dict | None, devices: list, days: list[int], cfg: AttributionConfig,
                   chips: dict, rid: str | None, shifts: dict | None = None, cache: dict | None = None,
                   model: str | None = None, power_rows: list | None = None):
    """Attribute one replica day by day.

    ``rq``: the replica's requests that overlap the days (arrays s, f, e, c sorted by s);
    ``devices``: (device_id, ts, power_w, counter_j, chip) with samples of those days only;
    ``shifts``: {day: seconds} to subtract from the devices' sample times that day (a corrected
    clock skew); ``cache``: {(device_id, day): DeviceIntervals} of the uncorrected samples.
    ``power_rows``: appended with the power model of each device-day (``attribution.power_model``).
    Returns (request rows as (index array, day, active, idle, prefill part of active, (prefill,
    decode) device-seconds) per day, device-day rows).
    """
    shifts = shifts or {}
    cache = cache or {}
    n = rq["s"].shape[0] if rq is not None else 0
    if n:
        s_cl, _, e_cl = request_spans(rq["s"], rq["f"], rq["e"], rq["c"])
    req_rows, day_rows = [], []
    for day in days:
        d0, d1 = day * DAY_S, (day + 1) * DAY_S
        idx = np.nonzero((s_cl < d1) & (e_cl > d0))[0] if n else np.zeros(0, np.int64)
        work = ReplicaWork.build(rq["s"][idx], rq["f"][idx], rq["e"][idx], rq["c"][idx]) if idx.shape[0] else None
        acc_a = np.zeros(idx.shape[0])
        acc_i = np.zeros(idx.shape[0])
        acc_p = np.zeros(idx.shape[0])
        acc_s = np.zeros((idx.shape[0], 2))
        for dev in devices:
            iv = _intervals_of_day(dev, day, float(shifts.get(day, 0.0)), chips, cfg, cache)
            if iv is None:
                continue
            chip = dev[4]
            res = attribute_device(iv, work, chip_params(chips, chip)[2], cfg, cfg.weights(chip))
            if work is not None:
                acc_a += res.req_active_j
                acc_i += res.req_idle_j
                acc_p += res.req_prefill_j
                acc_s += res.req_phase_s
            if res.measured_j.shape[0]:
                day_rows.append(_device_day_row(res, day, dev[0], chip, rid))
            if power_rows is not None:
                power_rows += _power_rows(res, dev[0], chip, model, rid)
        if idx.shape[0]:
            req_rows.append((idx, day, acc_a, acc_i, acc_p, acc_s))
    return req_rows, day_rows
