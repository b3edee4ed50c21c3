"""A small live simulated device source for the sampling agent (``--backend sim``).

Not the fleet simulator (that is :mod:`collectors.sim.simulate`): this only makes
``N`` plausible devices answer "what is your power and energy counter *now*",
so the agent, its spool files and its crash-safety can run on a machine with no
GPU.

Power is a smooth, deterministic function of wall-clock time, a constant plus
three sinusoids per device (periods of tens of seconds to minutes, phases from
the seed), kept between the chip's idle and peak power. The energy counter is
the *analytic* integral of that power since a fixed reference instant
(2024-01-01T00:00:00Z), so

* ``energy_counter_j(t2) - energy_counter_j(t1)`` equals the integral of
  ``power_w`` over ``[t1, t2]`` exactly (up to float rounding), and
* the counter keeps counting across agent restarts, like a real driver counter.
"""
from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable

from collectors.base import BackendBase

#: the counter's zero: 2024-01-01T00:00:00Z, in unix seconds
REFERENCE_UNIX_S = 1_704_067_200.0


@dataclass(frozen=True)
class SimChip:
    """The few numbers the live simulator needs about a chip."""

    chip: str
    vendor: str
    idle_w: float
    peak_w: float
    memory_mib: float
    sm_clock_mhz: float


SIM_CHIPS: dict[str, SimChip] = {
    c.chip: c
    for c in (
        SimChip("nvidia-h100-sxm", "nvidia", 75.0, 700.0, 81_559.0, 1_980.0),
        SimChip("nvidia-h200", "nvidia", 80.3, 700.0, 143_771.0, 1_980.0),
        SimChip("nvidia-a100-sxm4-80gb", "nvidia", 55.0, 400.0, 81_920.0, 1_410.0),
        SimChip("nvidia-l40s", "nvidia", 35.0, 350.0, 46_068.0, 2_520.0),
        SimChip("amd-mi300x", "amd", 140.0, 750.0, 196_592.0, 2_100.0),
        SimChip("amd-mi325x", "amd", 150.0, 1_000.0, 262_128.0, 2_100.0),
    )
}


@dataclass(frozen=True)
class _Wave:
    amplitude_w: float
    omega_rad_s: float
    phase_rad: float


class SimDevice:
    """One simulated device: power(t) and its exact integral."""

    def __init__(self, spec: SimChip, rng: random.Random) -> None:
        self.spec = spec
        span_w = spec.peak_w - spec.idle_w
        self.base_w = spec.idle_w + 0.5 * span_w
        shares = (0.25, 0.14, 0.06)  # sum 0.45: power stays within [idle+5%, idle+95%]
        periods_s = (11.0, 37.0, 173.0)
        self.waves = tuple(
            _Wave(
                amplitude_w=share * span_w,
                omega_rad_s=2.0 * math.pi / (period * rng.uniform(0.8, 1.25)),
                phase_rad=rng.uniform(0.0, 2.0 * math.pi),
            )
            for share, period in zip(shares, periods_s)
        )
        self.memory_used_mib = spec.memory_mib * rng.uniform(0.6, 0.92)
        self.uuid = f"SIM-{rng.getrandbits(64):016x}"

    def power_w(self, unix_s: float) -> float:
        """Instantaneous power at ``unix_s``."""
        tau = unix_s - REFERENCE_UNIX_S
        return self.base_w + sum(
            w.amplitude_w * math.sin(w.omega_rad_s * tau + w.phase_rad) for w in self.waves
        )

    def energy_j(self, unix_s: float) -> float:
        """Integral of :meth:`power_w` from the reference instant to ``unix_s``."""
        tau = unix_s - REFERENCE_UNIX_S
        energy = self.base_w * tau
        for w in self.waves:
            energy += (w.amplitude_w / w.omega_rad_s) * (
                math.cos(w.phase_rad) - math.cos(w.omega_rad_s * tau + w.phase_rad)
            )
        return energy


class SimLiveBackend(BackendBase):
    """``devices`` simulated devices of one ``chip``, read at the injected clock."""

    source = "sim"

    def __init__(
        self,
        node: str | None = None,
        devices: int = 8,
        chip: str = "nvidia-h100-sxm",
        seed: int = 0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(node)
        if devices < 1:
            raise ValueError("devices must be >= 1")
        spec = SIM_CHIPS.get(chip) or SimChip(chip, chip.split("-")[0], 80.0, 700.0, 81_920.0, 1_800.0)
        rng = random.Random(f"{seed}/{self.node}/{chip}")
        self.spec = spec
        self.devices = [SimDevice(spec, rng) for _ in range(devices)]
        self._ids = [self.device_id(i) for i in range(devices)]
        self._clock = clock

    def sample(self) -> list[dict[str, Any]]:
        """One row per simulated device, all at the same clock reading."""
        now_s = self._clock()
        ts = datetime.fromtimestamp(now_s, tz=timezone.utc)
        spec = self.spec
        span_w = spec.peak_w - spec.idle_w
        rows = []
        for index, dev in enumerate(self.devices):
            power_w = dev.power_w(now_s)
            load = (power_w - spec.idle_w) / span_w
            rows.append(
                {
                    "ts": ts,
                    "node": self.node,
                    "device_id": self._ids[index],
                    "device_index": index,
                    "device_uuid": dev.uuid,
                    "chip": spec.chip,
                    "vendor": spec.vendor,
                    "power_w": power_w,
                    "power_kind": "instant",
                    "energy_counter_j": dev.energy_j(now_s),
                    "utilization_pct": round(min(100.0, max(0.0, 100.0 * load)), 1),
                    "memory_used_mib": dev.memory_used_mib,
                    "temperature_c": round(32.0 + 45.0 * load, 1),
                    "sm_clock_mhz": spec.sm_clock_mhz,
                    "power_limit_w": spec.peak_w,
                    "source": self.source,
                }
            )
        return rows

    def close(self) -> None:
        """Nothing to release."""
