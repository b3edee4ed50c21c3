"""What a device's sensors report for one simulated day: vendor power semantics (instant, 1 s or
windowed average), noise, a quantised and wrapping energy counter, utilisation, memory, temperature
and clocks; plus the sensor faults (counter reset, device lost, clock skew)."""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import pyarrow as pa

from collectors.schema import DEVICE_SAMPLES
from collectors.units import DAY_S

TICK_S = 1.0
MISSED_SAMPLE_P = 0.002


def ts_array(seconds: np.ndarray) -> pa.Array:
    """Epoch seconds -> a UTC microsecond timestamp array."""
    from collectors.schema import TS

    return pa.array(np.round(np.asarray(seconds, dtype=np.float64) * 1e6).astype(np.int64), type=pa.int64()).cast(TS)


def _energy_at(power: np.ndarray, day_start: float) -> Callable[[np.ndarray], np.ndarray]:
    """Cumulative true energy since ``day_start`` at any instant of the day (piecewise constant power)."""
    cum = np.concatenate([[0.0], np.cumsum(power * TICK_S)])

    def energy_at(tt: np.ndarray) -> np.ndarray:
        x = np.clip(tt - day_start, 0.0, DAY_S)
        k = np.minimum((x // TICK_S).astype(np.int64), power.shape[0] - 1)
        return cum[k] + power[k] * (x - k * TICK_S)

    return energy_at


def _power_reading(sensor, vendor: str, t: np.ndarray, k_t: np.ndarray, day_start: float, power: np.ndarray,
                   energy_at, rng: np.random.Generator) -> np.ndarray:
    e_t = energy_at(t)
    if sensor.power_kind == "avg_1s":
        pw = (e_t - energy_at(t - 1.0)) / np.minimum(1.0, np.maximum(t - day_start, 1e-9))
    elif sensor.power_kind == "avg_window":
        w = max(sensor.power_window_s, 1e-3)
        pw = (e_t - energy_at(t - w)) / np.minimum(w, np.maximum(t - day_start, 1e-9))
    else:
        pw = power[k_t]
    pw = pw * (1.0 + sensor.power_noise_rel * rng.standard_normal(t.shape[0]))
    return np.round(pw, 0 if vendor == "amd" else 3)


def _counter_reading(sim, d, sensor, t: np.ndarray, day_start: float, energy_at) -> np.ndarray:
    """The cumulative energy counter: base + energy so far, reset by the counter_reset fault, quantised, wrapped."""
    counter = d.counter_base_j + d.energy_total_j + energy_at(t)
    cr = sim.fleet.faults.get("counter_reset")
    if cr and cr.get("node") == d.node and int(cr.get("device", -1)) == d.index:
        at = sim.t0 + int(cr.get("day", 0)) * DAY_S + float(cr.get("at_s", 0))
        if day_start <= at < day_start + DAY_S:
            sim.faults.append({"fault": "counter_reset", "node": d.node, "device_id": d.device_id,
                               "detail": f"energy counter restarts at 0 at {at}", "ts": at})
            e_reset = d.energy_total_j + float(energy_at(np.array([at]))[0])
            counter = np.where(t >= at, counter - (d.counter_base_j + e_reset), counter)
            d.counter_base_j = -e_reset
    counter = np.floor(counter / sensor.counter_unit_j) * sensor.counter_unit_j
    if sensor.counter_wrap_j:
        counter = np.mod(counter, sensor.counter_wrap_j)
    return counter


def _kept(sim, d, t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Which samples arrive: a few are missed at random, none while the device_lost fault lasts."""
    keep = rng.random(t.shape[0]) >= MISSED_SAMPLE_P
    dl = sim.fleet.faults.get("device_lost")
    if dl and dl.get("node") == d.node and int(dl.get("device", -1)) == d.index:
        a = sim.t0 + int(dl.get("day", 0)) * DAY_S + float(dl.get("start_s", 0))
        b = a + float(dl.get("duration_s", 600))
        lost = (t >= a) & (t < b)
        if lost.any():
            keep &= ~lost
            sim.faults.append({"fault": "device_lost", "node": d.node, "device_id": d.device_id,
                               "detail": f"no samples from {a} for {b - a:.0f} s ({int(lost.sum())} samples)",
                               "ts": a})
    return keep


def _clock_skew(sim, d, day: int, day_start: float) -> float:
    cs = sim.fleet.faults.get("clock_skew")
    if not (cs and cs.get("node") == d.node):
        return 0.0
    skew = float(cs.get("skew_s", 0.0))
    if day == 0 and d.index == 0:
        sim.faults.append({"fault": "clock_skew", "node": d.node, "device_id": None,
                           "detail": f"node clock ahead by {skew} s", "ts": day_start})
    return skew


def _other_readings(sim, d, t: np.ndarray, k_t: np.ndarray, pw: np.ndarray, busy: np.ndarray, batch: np.ndarray,
                    rng: np.random.Generator) -> dict[str, np.ndarray]:
    f = sim.fleet
    rep = f.replicas[d.replica] if d.replica >= 0 else None
    model = f.models[rep.model] if rep else None
    tp = len(rep.devices) if rep else 1
    mem = np.full(t.shape[0], 512.0)
    if model:
        mem = mem + model.weights_gb * 1024 / tp + batch[k_t] * 1500 * model.kv_mb_per_token / tp
    return {
        "utilization_pct": np.round(busy[k_t] * 100.0, 0),
        "memory_used_mib": np.round(mem, 0),
        "temperature_c": np.round(30.0 + 0.055 * pw + rng.normal(0, 0.5, t.shape[0]), 0),
        "sm_clock_mhz": np.where(busy[k_t] > 0, 1755.0 if d.vendor == "nvidia" else 2100.0, 345.0),
    }


def sensor_table(sim, d, day: int, day_start: float, power: np.ndarray, busy: np.ndarray,
                 batch: np.ndarray) -> pa.Table:
    """One day of DEVICE_SAMPLES rows of device ``d`` of simulator ``sim`` (true power ``power`` per tick)."""
    chip = sim.fleet.chips[d.chip]
    sensor = chip.sensor
    rng = np.random.default_rng([sim.seed, day, 10_000 + sim.devices.index(d), 3])
    step_s = sim.interval_s
    n_s = int(np.floor((DAY_S - d.phase_s) / step_s - 1e-9)) + 1
    t = day_start + d.phase_s + np.arange(n_s) * step_s + rng.uniform(0.0, min(0.02, step_s / 10), n_s)
    t = t[t < day_start + DAY_S]
    energy_at = _energy_at(power, day_start)
    k_t = np.minimum(((t - day_start) // TICK_S).astype(np.int64), power.shape[0] - 1)
    pw = _power_reading(sensor, d.vendor, t, k_t, day_start, power, energy_at, rng)
    counter = _counter_reading(sim, d, sensor, t, day_start, energy_at)
    other = _other_readings(sim, d, t, k_t, pw, busy, batch, rng)
    keep = _kept(sim, d, t, rng)
    skew = _clock_skew(sim, d, day, day_start)
    n = int(keep.sum())

    def same(value: Any) -> pa.Array:
        return pa.array([value] * n, pa.string())

    return pa.table({
        "ts": ts_array(t[keep] + skew), "node": same(d.node), "device_id": same(d.device_id),
        "device_index": pa.array(np.full(n, d.index, np.int32)), "device_uuid": same(d.uuid),
        "chip": same(d.chip), "vendor": same(d.vendor), "power_w": pa.array(pw[keep]),
        "power_kind": same(sensor.power_kind), "energy_counter_j": pa.array(counter[keep]),
        **{k: pa.array(v[keep]) for k, v in other.items()},
        "power_limit_w": pa.array(np.full(n, chip.rated_power_w)), "source": same("sim"),
    }, schema=DEVICE_SAMPLES)
