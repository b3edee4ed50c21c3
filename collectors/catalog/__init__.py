"""The chip catalog (``chips.yaml`` beside this file): read once, validated, for every floor.

The simulator's fleets, the attribution (rated and idle power, counter wrap) and the loader's
power bounds all take chips from :func:`load_chips`; a fleet file may add or override chips
(collectors/sim/fleet.py), validated by the same :func:`parse_chips`.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from collectors.config import ConfigError, fields, load_yaml_mapping, number, string
from collectors.names import name_problem

CATALOG = Path(__file__).resolve().parent
CHIPS_FILE = CATALOG / "chips.yaml"

POWER_KINDS = ("avg_1s", "instant", "avg_window")
_CHIP_KEYS = {"vendor", "rated_power_w", "idle_power_w", "model_loaded_idle_extra_w", "memory_gb", "sensor",
              "source", "sources", "notes", "name"}
_SENSOR_KEYS = {"power_kind", "power_window_s", "counter_unit_j", "counter_wrap_j", "power_noise_rel", "source",
                "notes"}


@dataclass(frozen=True)
class Sensor:
    power_kind: str
    power_window_s: float
    counter_unit_j: float
    counter_wrap_j: float | None
    power_noise_rel: float


@dataclass(frozen=True)
class Chip:
    id: str
    vendor: str
    rated_power_w: float
    idle_power_w: float
    model_loaded_idle_extra_w: float
    memory_gb: float
    sensor: Sensor

    @property
    def serving_idle_w(self) -> float:
        return self.idle_power_w + self.model_loaded_idle_extra_w


def parse_chips(src: Any, raw: Any, error: type[ValueError] = ConfigError) -> dict[str, Chip]:
    """Chips from a ``chips:`` mapping; any wrong field raises ``error`` naming file and field."""
    fields(src, "chips", raw, raw.keys() if isinstance(raw, dict) else (), error=error)
    chips = {}
    for cid, c in raw.items():
        w = f"chips.{cid}"
        problem = name_problem(cid)
        if problem:
            raise error(f"{src}: field '{w}' is not a usable chip id ({problem})")
        fields(src, w, c, _CHIP_KEYS, required=("vendor", "rated_power_w", "idle_power_w", "memory_gb", "sensor"),
               error=error)
        s = fields(src, f"{w}.sensor", c["sensor"], _SENSOR_KEYS, required=("power_kind",), error=error)
        sensor = Sensor(
            power_kind=string(src, f"{w}.sensor.power_kind", s["power_kind"], choices=POWER_KINDS, error=error),
            power_window_s=number(src, f"{w}.sensor.power_window_s", s.get("power_window_s", 1.0), lo=0, hi=3600,
                                  error=error),
            counter_unit_j=number(src, f"{w}.sensor.counter_unit_j", s.get("counter_unit_j", 0.001), lo=1e-12,
                                  hi=1e6, error=error),
            counter_wrap_j=number(src, f"{w}.sensor.counter_wrap_j", s.get("counter_wrap_j"), lo=1, allow_none=True,
                                  error=error),
            power_noise_rel=number(src, f"{w}.sensor.power_noise_rel", s.get("power_noise_rel", 0.01), lo=0, hi=0.5,
                                   error=error),
        )
        rated = number(src, f"{w}.rated_power_w", c["rated_power_w"], lo=1, hi=5000, error=error)
        idle = number(src, f"{w}.idle_power_w", c["idle_power_w"], lo=0, error=error)
        if idle >= rated:
            raise error(f"{src}: field '{w}.idle_power_w' ({idle}) must be below rated_power_w ({rated})")
        chips[str(cid)] = Chip(
            id=str(cid), vendor=string(src, f"{w}.vendor", c["vendor"], error=error), rated_power_w=rated,
            idle_power_w=idle,
            model_loaded_idle_extra_w=number(src, f"{w}.model_loaded_idle_extra_w",
                                             c.get("model_loaded_idle_extra_w", 0), lo=0, hi=5000, error=error),
            memory_gb=number(src, f"{w}.memory_gb", c["memory_gb"], lo=1, hi=100000, error=error),
            sensor=sensor,
        )
    return chips


def chips_raw() -> dict:
    """The catalog's ``chips:`` mapping as written (for a fleet file to extend before parsing)."""
    return dict(load_yaml_mapping(CHIPS_FILE).get("chips") or {})


@lru_cache(maxsize=1)
def load_chips() -> dict[str, Chip]:
    """The validated chip catalog."""
    return parse_chips(CHIPS_FILE, chips_raw())
