"""The fleet's data types (what collectors/sim/fleet.py builds from a validated fleet file)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from collectors.catalog import Chip


class FleetError(ValueError):
    """A fleet or catalog file is wrong; the message names the file and the field."""


@dataclass(frozen=True)
class Model:
    id: str
    params_billions: float
    weights_gb: float
    kv_mb_per_token: float
    active_params_billions: float | None = None  # MoE: what one token computes with
    output_tokens: dict | None = None  # {mean, sigma, max}: the model's own output lengths (reasoning)


@dataclass(frozen=True)
class Perf:
    model: str
    chip: str
    tp: int
    max_batch: int
    prefill_tokens_per_s: float
    prefill_power_w: float
    decode_t0_ms: float
    decode_t1_ms: float
    decode_power_a_w: float
    decode_power_c_w: float

    def decode_step_s(self, batch: float) -> float:
        return (self.decode_t0_ms + self.decode_t1_ms * batch) / 1000.0

    def decode_power_w(self, batch: float, rated_w: float) -> float:
        if batch <= 0:
            return 0.0
        return min(rated_w, self.decode_power_a_w + self.decode_power_c_w * math.log(max(batch, 1.0)))


@dataclass(frozen=True)
class Node:
    name: str
    chip: str
    devices: int
    site: str


@dataclass(frozen=True)
class Replica:
    id: str
    node: str
    model: str
    chip: str
    devices: tuple[int, ...]
    share: float

    def device_ids(self) -> list[str]:
        return [f"{self.node}/{i}" for i in self.devices]


@dataclass
class Traffic:
    mode: str
    requests_per_s: dict[str, float]
    diurnal_amplitude: float
    peak_hour_utc: float
    weekend_factor: float
    growth_per_week: float
    tasks: dict[str, float]
    languages: dict[str, float]
    tiers: dict[str, float]
    error_rate: float
    replay: dict[str, Any] = field(default_factory=dict)
    routes: dict[str, dict[str, float]] = field(default_factory=dict)  # task -> {model: share}


@dataclass
class Fleet:
    name: str
    source: str
    nodes: list[Node]
    replicas: list[Replica]
    traffic: Traffic
    faults: dict[str, Any]
    chips: dict[str, Chip]
    models: dict[str, Model]
    perf: dict[tuple[str, str], Perf]
    tasks: dict[str, dict[str, float]]
    token_limits: dict[str, int]
    language_token_factor: dict[str, float]

    def perf_for(self, replica: Replica) -> Perf:
        return self.perf[(replica.model, replica.chip)]

    def node(self, name: str) -> Node:
        return next(n for n in self.nodes if n.name == name)

    def device_count(self) -> int:
        return sum(n.devices for n in self.nodes)
