"""Device sample intervals: energy between consecutive samples of one device.

Energy comes from the cumulative counter's delta where it is valid (wraps unwrapped with the
chip's counter width; a negative or implausible delta is a reset) and from trapezoidal
integration of power otherwise. Each interval records which source it used. Intervals are split at
UTC midnight (energy pro rata) so every device-day balances on its own.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from collectors.units import DAY_S
from warehouse.attribution.config import AttributionConfig


@dataclass
class DeviceIntervals:
    """Intervals of one device, split at UTC midnight."""

    start: np.ndarray
    end: np.ndarray
    energy_j: np.ndarray
    source: np.ndarray  # 0 counter, 1 integrated
    gap: np.ndarray  # bool
    resets: int


def _split_at_midnight(start, end, energy, source, gap):
    d0, d1 = np.floor(start / DAY_S), np.floor(end / DAY_S)
    cross = d1 > d0
    if not cross.any():
        return start, end, energy, source, gap
    idx = np.nonzero(cross)[0]
    mids = (d0[idx] + 1) * DAY_S
    frac = (mids - start[idx]) / (end[idx] - start[idx])
    # piece before midnight stays at idx; after-midnight pieces appended, then re-sorted
    new_end = end[idx].copy()
    new_energy = energy[idx] * (1 - frac)
    end = end.copy()
    energy = energy.copy()
    end[idx] = mids
    energy[idx] = energy[idx] * frac
    start = np.concatenate([start, mids])
    end = np.concatenate([end, new_end])
    energy = np.concatenate([energy, new_energy])
    source = np.concatenate([source, source[idx]])
    gap = np.concatenate([gap, gap[idx]])
    o = np.argsort(start, kind="stable")
    return start[o], end[o], energy[o], source[o], gap[o]


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
    p = power_w
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
    start, end, energy, source, gap = _split_at_midnight(ts[:-1], ts[1:], energy, source, gap)
    return DeviceIntervals(start, end, energy, source, gap, resets)


def day_intervals(t: np.ndarray, p: np.ndarray, c: np.ndarray, day: int, rated_w: float, wrap_j,
                  cfg: AttributionConfig, iv: DeviceIntervals | None = None) -> DeviceIntervals:
    """Intervals of one device on one UTC day, from that day's samples only.

    Between samples as :func:`device_intervals` (counter deltas, else integrated power). The
    seconds between midnight and the first sample, and between the last sample and the next
    midnight, are extrapolated from the nearest sample's power when they are no longer than a
    normal sampling gap: so a day never needs its neighbours' samples, and a late file for one
    day changes that day's results only. ``iv``: :func:`device_intervals` of the same samples,
    when already computed.
    """
    d0, d1 = day * DAY_S, (day + 1) * DAY_S
    if iv is None:
        iv = device_intervals(t, p, c, rated_w, wrap_j, cfg)
    ts = np.unique(t)
    if ts.shape[0] < 2:
        return iv
    med = float(np.median(np.diff(ts)))
    limit = max(cfg.gap_factor * med, 2.0 * med + 1.0)
    order = np.argsort(t, kind="stable")
    pw = p[order]
    finite = pw[np.isfinite(pw)]
    p_first = float(finite[0]) if finite.shape[0] else 0.0
    p_last = float(finite[-1]) if finite.shape[0] else 0.0
    starts, ends, energy = [iv.start], [iv.end], [iv.energy_j]
    source, gap = [iv.source], [iv.gap]
    for a, b, pw_ in ((d0, float(ts[0]), p_first), (float(ts[-1]), d1, p_last)):
        if 0.0 < b - a <= limit:
            starts.append(np.array([a]))
            ends.append(np.array([b]))
            energy.append(np.array([max(pw_, 0.0) * (b - a)]))
            source.append(np.array([1], np.int8))
            gap.append(np.array([False]))
    start = np.concatenate(starts)
    o = np.argsort(start, kind="stable")
    return DeviceIntervals(start[o], np.concatenate(ends)[o], np.concatenate(energy)[o],
                           np.concatenate(source)[o], np.concatenate(gap)[o], iv.resets)
