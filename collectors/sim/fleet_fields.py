"""Field checks for fleet files (through collectors.config and collectors.names) and the parsers
of the ``traffic:`` and ``faults:`` sections."""
from __future__ import annotations

from typing import Any

from collectors.config import boolean, fields, number, string
from collectors.names import InvalidName, clean_identifier
from collectors.sim.fleet_types import FleetError, Node, Replica, Traffic
from collectors.units import DAY_S

#: fleet-wide mean requests per second per model the simulator accepts (86 M requests a day):
#: above it one simulated day no longer fits in memory
MAX_REQUESTS_PER_S = 1000.0
_TRAFFIC_KEYS = ("mode", "requests_per_s", "diurnal_amplitude", "peak_hour_utc", "weekend_factor",
                 "growth_per_week", "tasks", "languages", "tiers", "error_rate", "replay", "routes")
_REPLAY_KEYS = ("trace", "rate_scale", "time_scale")
#: fault: (allowed keys, required keys)
_FAULT_KEYS = {
    "device_lost": (("node", "device", "day", "start_s", "duration_s"), ("node", "device")),
    "counter_reset": (("node", "device", "day", "at_s"), ("node", "device")),
    "clock_skew": (("node", "skew_s"), ("node", "skew_s")),
    "late_file": (("day",), ()),
}
_FAULT_COUNTS = {"duplicate_files": 100, "bad_rows": 10_000}


def num_field(src: Any, where: str, value: Any, *, lo: float | None = None, hi: float | None = None,
              lo_open: bool = False, allow_none: bool = False) -> float | None:
    return number(src, where, value, lo=lo, hi=hi, lo_open=lo_open, allow_none=allow_none, error=FleetError)


def int_field(src: Any, where: str, value: Any, lo: int, hi: int) -> int:
    return number(src, where, value, lo=lo, hi=hi, integer=True, error=FleetError)


def str_field(src: Any, where: str, value: Any) -> str:
    return string(src, where, value, error=FleetError)


def name_field(src: Any, where: str, value: Any) -> str:
    """A name from the fleet file under the identifier policy (collectors/names.py)."""
    try:
        return clean_identifier(where, value)
    except InvalidName as exc:
        raise FleetError(f"{src}: field '{where}' is not a usable name ({exc.reason}): {value!r:.80}") from None


def check_fields(src: Any, where: str, d: Any, allowed, required=()) -> dict:
    return fields(src, where, d, allowed, required, error=FleetError)


def _probabilities(src: str, where: str, d: Any, allowed: tuple[str, ...] | None = None) -> dict[str, float]:
    if not isinstance(d, dict) or not d:
        raise FleetError(f"{src}: field '{where}' must be a non-empty mapping of name: share")
    out = {}
    for k, v in d.items():
        if allowed is not None and k not in allowed:
            raise FleetError(f"{src}: field '{where}.{k}' is not one of {', '.join(allowed)}")
        out[name_field(src, f"{where}.{k}", k)] = num_field(src, f"{where}.{k}", v, lo=0, hi=1e6)
    total = sum(out.values())
    if total <= 0:
        raise FleetError(f"{src}: field '{where}' shares must sum to more than 0")
    return {k: v / total for k, v in out.items()}


def _parse_replay(src: str, mode: str, replay: Any) -> dict[str, Any]:
    if replay is None:
        replay = {}
    check_fields(src, "traffic.replay", replay, _REPLAY_KEYS)
    if mode == "replay" and replay.get("trace") not in ("code", "conv"):
        raise FleetError(f"{src}: field 'traffic.replay.trace' must be code or conv")
    out = dict(replay)
    for key in ("rate_scale", "time_scale"):
        if key in out:
            out[key] = num_field(src, f"traffic.replay.{key}", out[key], lo=0.01, hi=100)
    return out


def parse_traffic(src: str, t: Any, replicas: list[Replica]) -> Traffic:
    from collectors.schema import TASKS, TIERS

    check_fields(src, "traffic", t, _TRAFFIC_KEYS, ("requests_per_s",))
    mode = string(src, "traffic.mode", t.get("mode", "synthetic"), choices=("synthetic", "replay"), error=FleetError)
    rps = t["requests_per_s"]
    if not isinstance(rps, dict) or not rps:
        raise FleetError(f"{src}: field 'traffic.requests_per_s' must map model -> requests per second")
    served = {r.model for r in replicas}
    for mname in rps:
        if mname not in served:
            raise FleetError(f"{src}: field 'traffic.requests_per_s.{mname}': no replica serves this model")
    return Traffic(
        mode=mode,
        requests_per_s={k: num_field(src, f"traffic.requests_per_s.{k}", v, lo=0, hi=MAX_REQUESTS_PER_S)
                        for k, v in rps.items()},
        diurnal_amplitude=num_field(src, "traffic.diurnal_amplitude", t.get("diurnal_amplitude", 0.3), lo=0, hi=0.95),
        peak_hour_utc=num_field(src, "traffic.peak_hour_utc", t.get("peak_hour_utc", 15), lo=0, hi=24),
        weekend_factor=num_field(src, "traffic.weekend_factor", t.get("weekend_factor", 0.8), lo=0, hi=5),
        growth_per_week=num_field(src, "traffic.growth_per_week", t.get("growth_per_week", 0.0), lo=-0.5, hi=2),
        tasks=_probabilities(src, "traffic.tasks", t.get("tasks"), TASKS),
        languages=_probabilities(src, "traffic.languages", t.get("languages")),
        tiers=_probabilities(src, "traffic.tiers", t.get("tiers"), TIERS),
        error_rate=num_field(src, "traffic.error_rate", t.get("error_rate", 0.0), lo=0, hi=0.5),
        replay=_parse_replay(src, mode, t.get("replay")),
        routes=_routes(src, t.get("routes"), TASKS, served),
    )


def _routes(src: str, raw: Any, tasks: tuple[str, ...], served: set[str]) -> dict[str, dict[str, float]]:
    """traffic.routes: task -> {model: share}; a routed task goes only to those models."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise FleetError(f"{src}: field 'traffic.routes' must map task -> {{model: share}}")
    out = {}
    for task, to in raw.items():
        if task not in tasks:
            raise FleetError(f"{src}: field 'traffic.routes.{task}' is not one of {', '.join(tasks)}")
        out[task] = _probabilities(src, f"traffic.routes.{task}", to, tuple(sorted(served)))
    return out


def _parse_fault(src: str, kind: str, f: Any, by_name: dict[str, Node]) -> dict[str, Any]:
    w = f"faults.{kind}"
    allowed, required = _FAULT_KEYS[kind]
    check_fields(src, w, f, allowed, required)
    out = dict(f)
    if "node" in f:
        if not isinstance(f["node"], str) or f["node"] not in by_name:
            raise FleetError(f"{src}: field '{w}.node' is {f['node']!r:.80}, not a node of this fleet")
        if "device" in f:
            out["device"] = int_field(src, f"{w}.device", f["device"], 0, by_name[f["node"]].devices - 1)
    bounds = {"day": (0, 100_000), "start_s": (0, DAY_S), "at_s": (0, DAY_S), "duration_s": (0, 7 * DAY_S),
              "skew_s": (-3600, 3600)}
    for key, (lo, hi) in bounds.items():
        if key in f:
            out[key] = int_field(src, f"{w}.{key}", f[key], lo, hi) if key == "day" else num_field(src, f"{w}.{key}", f[key], lo=lo, hi=hi)
    return out


def parse_faults(src: str, faults: Any, nodes: list[Node]) -> dict[str, Any]:
    faults = check_fields(src, "faults", {} if faults is None else faults, (*_FAULT_KEYS, *_FAULT_COUNTS, "truncated_file"))
    by_name = {n.name: n for n in nodes}
    out: dict[str, Any] = {}
    for kind, value in faults.items():
        if kind in _FAULT_KEYS:
            out[kind] = _parse_fault(src, kind, value, by_name)
        elif kind in _FAULT_COUNTS:
            out[kind] = int_field(src, f"faults.{kind}", value, 0, _FAULT_COUNTS[kind])
        else:
            out[kind] = boolean(src, f"faults.{kind}", value, error=FleetError)
    return out
