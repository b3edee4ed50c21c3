"""Fleet, chip, model and task catalogs: loaded from YAML, validated with messages that name the field.

A fleet file (docs/fleet-format.md) names nodes (a chip and a device count), replicas (a model on
one or more devices of one node) and traffic. Chips and models come from the catalog in
``collectors/catalog``; a fleet file may add or override chips and perf rows (``chips:``,
``perf:``), which is how a custom ASIC's power and throughput are set.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


from collectors.catalog import CATALOG, Chip, Sensor, parse_chips  # noqa: F401  (Chip, Sensor: re-exported)
from collectors.catalog import chips_raw as catalog_chips_raw
from collectors.config import load_yaml_mapping

PRESETS = CATALOG / "fleets"


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


def _load_yaml(path: Path) -> dict:
    return load_yaml_mapping(path, FleetError)


def _num(src: str, where: str, value: Any, *, lo: float | None = None, hi: float | None = None,
         allow_none: bool = False) -> float | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise FleetError(f"{src}: field '{where}' must be a number, got {value!r}")
    if lo is not None and value < lo:
        raise FleetError(f"{src}: field '{where}' must be >= {lo}, got {value!r}")
    if hi is not None and value > hi:
        raise FleetError(f"{src}: field '{where}' must be <= {hi}, got {value!r}")
    return float(value)


def _req(src: str, where: str, d: dict, key: str) -> Any:
    if not isinstance(d, dict) or key not in d:
        raise FleetError(f"{src}: missing field '{where}.{key}'" if where else f"{src}: missing field '{key}'")
    return d[key]


def _parse_perf(src: str, rows: list) -> dict[tuple[str, str], Perf]:
    out = {}
    if not isinstance(rows, list):
        raise FleetError(f"{src}: field 'perf' must be a list")
    for i, r in enumerate(rows):
        w = f"perf[{i}]"
        p = Perf(
            model=str(_req(src, w, r, "model")), chip=str(_req(src, w, r, "chip")),
            tp=int(_num(src, f"{w}.tp", _req(src, w, r, "tp"), lo=1, hi=64)),
            max_batch=int(_num(src, f"{w}.max_batch", _req(src, w, r, "max_batch"), lo=1)),
            prefill_tokens_per_s=_num(src, f"{w}.prefill_tokens_per_s", _req(src, w, r, "prefill_tokens_per_s"), lo=1),
            prefill_power_w=_num(src, f"{w}.prefill_power_w", _req(src, w, r, "prefill_power_w"), lo=1),
            decode_t0_ms=_num(src, f"{w}.decode_t0_ms", _req(src, w, r, "decode_t0_ms"), lo=0.01),
            decode_t1_ms=_num(src, f"{w}.decode_t1_ms", _req(src, w, r, "decode_t1_ms"), lo=0),
            decode_power_a_w=_num(src, f"{w}.decode_power_a_w", _req(src, w, r, "decode_power_a_w"), lo=0),
            decode_power_c_w=_num(src, f"{w}.decode_power_c_w", _req(src, w, r, "decode_power_c_w"), lo=0),
        )
        out[(p.model, p.chip)] = p
    return out


def _probabilities(src: str, where: str, d: Any, allowed: tuple[str, ...] | None = None) -> dict[str, float]:
    if not isinstance(d, dict) or not d:
        raise FleetError(f"{src}: field '{where}' must be a non-empty mapping of name: share")
    out = {}
    for k, v in d.items():
        if allowed is not None and k not in allowed:
            raise FleetError(f"{src}: field '{where}.{k}' is not one of {', '.join(allowed)}")
        out[str(k)] = _num(src, f"{where}.{k}", v, lo=0)
    total = sum(out.values())
    if total <= 0:
        raise FleetError(f"{src}: field '{where}' shares must sum to more than 0")
    return {k: v / total for k, v in out.items()}


def _output_tokens(src: str, mid: str, m: dict) -> dict | None:
    o = m.get("output_tokens")
    if o is None:
        return None
    w = f"models.{mid}.output_tokens"
    return {"mean": _num(src, f"{w}.mean", _req(src, w, o, "mean"), lo=1),
            "sigma": _num(src, f"{w}.sigma", o.get("sigma", 0.6), lo=0, hi=3),
            "max": _num(src, f"{w}.max", o.get("max", 32768), lo=1)}


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


def resolve_fleet_path(fleet: str | Path) -> Path:
    p = Path(fleet)
    if p.suffix in (".yaml", ".yml") or p.exists():
        return p
    preset = PRESETS / f"{fleet}.yaml"
    if preset.exists():
        return preset
    names = ", ".join(sorted(x.stem for x in PRESETS.glob("*.yaml")))
    raise FleetError(f"{fleet}: neither a fleet file nor a preset (presets: {names})")


def load_fleet(fleet: str | Path) -> Fleet:
    """Load a fleet file or preset name, merged with the catalog, and validate every field."""
    from collectors.schema import TASKS, TIERS

    path = resolve_fleet_path(fleet)
    raw = _load_yaml(path)
    if "extends" in raw:
        base = _load_yaml(resolve_fleet_path(raw["extends"]))
        merged = copy.deepcopy(base)
        for k, v in raw.items():
            if k != "extends":
                merged[k] = v
        raw = merged
    src = str(path)

    known_top = {"name", "nodes", "replicas", "traffic", "faults", "chips", "perf", "description"}
    for k in raw:
        if k not in known_top:
            raise FleetError(f"{src}: unknown field '{k}' (expected one of {', '.join(sorted(known_top))})")

    chips_raw = catalog_chips_raw()
    chips_raw.update(raw.get("chips") or {})
    chips = parse_chips(src, chips_raw, FleetError)
    mcat = _load_yaml(CATALOG / "models.yaml")
    msrc = str(CATALOG / "models.yaml")
    models = {
        mid: Model(mid, float(m["params_billions"]), float(m["weights_gb"]), float(m["kv_mb_per_token"]),
                   _num(msrc, f"models.{mid}.active_params_billions", m.get("active_params_billions"), lo=0,
                        allow_none=True),
                   _output_tokens(msrc, mid, m))
        for mid, m in mcat["models"].items()
    }
    perf = _parse_perf(str(CATALOG / "models.yaml"), mcat["perf"])
    perf.update(_parse_perf(src, raw.get("perf") or []))
    tcat = _load_yaml(CATALOG / "tasks.yaml")

    nodes_raw = _req(src, "", raw, "nodes")
    if not isinstance(nodes_raw, list) or not nodes_raw:
        raise FleetError(f"{src}: field 'nodes' must be a non-empty list")
    nodes = []
    for i, n in enumerate(nodes_raw):
        w = f"nodes[{i}]"
        chip = str(_req(src, w, n, "chip"))
        if chip not in chips:
            raise FleetError(f"{src}: field '{w}.chip' is '{chip}', not in the chip catalog ({', '.join(sorted(chips))})")
        nodes.append(Node(
            name=str(_req(src, w, n, "name")), chip=chip,
            devices=int(_num(src, f"{w}.devices", _req(src, w, n, "devices"), lo=1, hi=64)),
            site=str(n.get("site", "default")),
        ))
    if len({n.name for n in nodes}) != len(nodes):
        raise FleetError(f"{src}: field 'nodes' has duplicate names")
    by_name = {n.name: n for n in nodes}

    reps_raw = _req(src, "", raw, "replicas")
    if not isinstance(reps_raw, list) or not reps_raw:
        raise FleetError(f"{src}: field 'replicas' must be a non-empty list")
    replicas = []
    used: set[tuple[str, int]] = set()
    for i, r in enumerate(reps_raw):
        w = f"replicas[{i}]"
        node_name = str(_req(src, w, r, "node"))
        if node_name not in by_name:
            raise FleetError(f"{src}: field '{w}.node' is '{node_name}', not a node of this fleet")
        node = by_name[node_name]
        model = str(_req(src, w, r, "model"))
        if model not in models:
            raise FleetError(f"{src}: field '{w}.model' is '{model}', not in the model catalog ({', '.join(sorted(models))})")
        if (model, node.chip) not in perf:
            raise FleetError(f"{src}: field '{w}.model': no perf row for {model} on {node.chip}")
        devs = _req(src, w, r, "devices")
        if not isinstance(devs, list) or not devs or not all(isinstance(d, int) for d in devs):
            raise FleetError(f"{src}: field '{w}.devices' must be a non-empty list of device indexes")
        for d in devs:
            if not 0 <= d < node.devices:
                raise FleetError(f"{src}: field '{w}.devices' has index {d}; node {node_name} has {node.devices} devices")
            if (node_name, d) in used:
                raise FleetError(f"{src}: field '{w}.devices': device {node_name}/{d} is already in another replica")
            used.add((node_name, d))
        p = perf[(model, node.chip)]
        if len(devs) != p.tp:
            raise FleetError(f"{src}: field '{w}.devices' has {len(devs)} devices; {model} on {node.chip} uses tensor-parallel {p.tp}")
        m = models[model]
        if m.weights_gb / p.tp > chips[node.chip].memory_gb * 0.95:
            raise FleetError(f"{src}: field '{w}.devices': {model} does not fit in {p.tp} x {chips[node.chip].memory_gb} GB")
        share = _num(src, f"{w}.share", r.get("share", 1.0), lo=0)
        replicas.append(Replica(
            id=f"{node_name}-{model}-{i}", node=node_name, model=model, chip=node.chip,
            devices=tuple(devs), share=share,
        ))

    t = _req(src, "", raw, "traffic")
    mode = str(t.get("mode", "synthetic"))
    if mode not in ("synthetic", "replay"):
        raise FleetError(f"{src}: field 'traffic.mode' must be synthetic or replay, got {mode!r}")
    rps = t.get("requests_per_s")
    if not isinstance(rps, dict) or not rps:
        raise FleetError(f"{src}: field 'traffic.requests_per_s' must map model -> requests per second")
    for mname, v in rps.items():
        if mname not in {r.model for r in replicas}:
            raise FleetError(f"{src}: field 'traffic.requests_per_s.{mname}': no replica serves this model")
        _num(src, f"traffic.requests_per_s.{mname}", v, lo=0)
    replay = t.get("replay") or {}
    if mode == "replay" and replay.get("trace") not in ("code", "conv"):
        raise FleetError(f"{src}: field 'traffic.replay.trace' must be code or conv")
    traffic = Traffic(
        mode=mode,
        requests_per_s={k: float(v) for k, v in rps.items()},
        diurnal_amplitude=_num(src, "traffic.diurnal_amplitude", t.get("diurnal_amplitude", 0.3), lo=0, hi=0.95),
        peak_hour_utc=_num(src, "traffic.peak_hour_utc", t.get("peak_hour_utc", 15), lo=0, hi=24),
        weekend_factor=_num(src, "traffic.weekend_factor", t.get("weekend_factor", 0.8), lo=0, hi=5),
        growth_per_week=_num(src, "traffic.growth_per_week", t.get("growth_per_week", 0.0), lo=-0.5, hi=2),
        tasks=_probabilities(src, "traffic.tasks", t.get("tasks"), TASKS),
        languages=_probabilities(src, "traffic.languages", t.get("languages")),
        tiers=_probabilities(src, "traffic.tiers", t.get("tiers"), TIERS),
        error_rate=_num(src, "traffic.error_rate", t.get("error_rate", 0.0), lo=0, hi=0.5),
        replay=replay,
        routes=_routes(src, t.get("routes"), TASKS, {r.model for r in replicas}),
    )
    faults = raw.get("faults") or {}
    if not isinstance(faults, dict):
        raise FleetError(f"{src}: field 'faults' must be a mapping")
    known_faults = {"device_lost", "counter_reset", "clock_skew", "duplicate_files", "late_file", "truncated_file", "bad_rows"}
    for k in faults:
        if k not in known_faults:
            raise FleetError(f"{src}: field 'faults.{k}' is not a known fault ({', '.join(sorted(known_faults))})")
    fleet = Fleet(
        name=str(raw.get("name", path.stem)), source=src, nodes=nodes, replicas=replicas,
        traffic=traffic, faults=faults, chips=chips, models=models, perf=perf,
        tasks=tcat["tasks"], token_limits=tcat["limits"],
        language_token_factor=tcat["language_token_factor"],
    )
    if traffic.routes:  # every model with traffic must get some task
        from collectors.sim.traffic import task_mix

        for mname, v in traffic.requests_per_s.items():
            try:
                if v > 0:
                    task_mix(fleet, mname)
            except ValueError:
                raise FleetError(f"{src}: field 'traffic.routes' sends no task to {mname}, "
                                 f"which has traffic.requests_per_s {v}") from None
    return fleet
