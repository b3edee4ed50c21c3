"""Fleet, chip, model and task catalogs: loaded from YAML, validated with messages that name the field.

Every field goes through collectors.config (unknown keys, wrong types, NaN/Inf and numbers outside
physical bounds are refused, naming the file and the field) and every name through the identifier
policy of collectors.names.

A fleet file (docs/fleet-format.md) names nodes (a chip and a device count), replicas (a model on
one or more devices of one node) and traffic. Chips and models come from the catalog in
``collectors/catalog``; a fleet file may add or override chips and perf rows (``chips:``,
``perf:``), which is how a custom ASIC's power and throughput are set.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from collectors.catalog import CATALOG, Chip, Sensor, parse_chips  # noqa: F401  (Chip, Sensor: re-exported)
from collectors.catalog import chips_raw as catalog_chips_raw
from collectors.config import load_yaml_mapping
from collectors.names import path_component
from collectors.sim.fleet_fields import MAX_REQUESTS_PER_S  # noqa: F401 (re-exported)
from collectors.sim.fleet_fields import check_fields, int_field, name_field, num_field, parse_faults, parse_traffic, str_field
from collectors.sim.fleet_types import Fleet, FleetError, Model, Node, Perf, Replica, Traffic  # noqa: F401 (re-exported)

PRESETS = CATALOG / "fleets"
_TOP_KEYS = ("name", "nodes", "replicas", "traffic", "faults", "chips", "perf", "description", "extends")
_NODE_KEYS = ("name", "chip", "devices", "site")
_REPLICA_KEYS = ("node", "model", "devices", "share")
_PERF_NUMBERS = {  # field: (lo, hi)
    "prefill_tokens_per_s": (1, 1e7), "prefill_power_w": (1, 5000), "decode_t0_ms": (0.01, 1e4),
    "decode_t1_ms": (0, 1e3), "decode_power_a_w": (0, 5000), "decode_power_c_w": (0, 5000),
}
_PERF_KEYS = ("model", "chip", "tp", "max_batch", "source", "notes", *_PERF_NUMBERS)
_MODEL_KEYS = ("params_billions", "weights_gb", "kv_mb_per_token", "family", "architecture",
               "active_params_billions", "output_tokens", "source", "notes")


def _load_yaml(path: Path) -> dict:
    return load_yaml_mapping(path, FleetError)


def _parse_models(src: Any, raw: Any) -> dict[str, Model]:
    check_fields(src, "models", raw, raw.keys() if isinstance(raw, dict) else ())
    out = {}
    for mid, m in raw.items():
        w = f"models.{mid}"
        check_fields(src, w, m, _MODEL_KEYS, ("params_billions", "weights_gb", "kv_mb_per_token"))
        out[str(mid)] = Model(str(mid), num_field(src, f"{w}.params_billions", m["params_billions"], lo=0, lo_open=True, hi=1e5),
                              num_field(src, f"{w}.weights_gb", m["weights_gb"], lo=0, lo_open=True, hi=1e6),
                              num_field(src, f"{w}.kv_mb_per_token", m["kv_mb_per_token"], lo=0, hi=1e4),
                              num_field(src, f"{w}.active_params_billions", m.get("active_params_billions"), lo=0,
                                        hi=1e5, allow_none=True),
                              _output_tokens(src, w, m.get("output_tokens")))
    return out


def _output_tokens(src: Any, w: str, o: Any) -> dict | None:
    """A model's own output lengths (reasoning models): {mean, sigma, max} tokens."""
    if o is None:
        return None
    w = f"{w}.output_tokens"
    check_fields(src, w, o, ("mean", "sigma", "max", "source"), ("mean",))
    return {"mean": num_field(src, f"{w}.mean", o["mean"], lo=1, hi=1e6),
            "sigma": num_field(src, f"{w}.sigma", o.get("sigma", 0.6), lo=0, hi=3),
            "max": num_field(src, f"{w}.max", o.get("max", 32768), lo=1, hi=1e7)}


def _parse_perf(src: Any, rows: Any) -> dict[tuple[str, str], Perf]:
    if not isinstance(rows, list):
        raise FleetError(f"{src}: field 'perf' must be a list")
    out = {}
    for i, r in enumerate(rows):
        w = f"perf[{i}]"
        check_fields(src, w, r, _PERF_KEYS, ("model", "chip", "tp", "max_batch", *_PERF_NUMBERS))
        p = Perf(
            model=str_field(src, f"{w}.model", r["model"]), chip=str_field(src, f"{w}.chip", r["chip"]),
            tp=int_field(src, f"{w}.tp", r["tp"], 1, 64), max_batch=int_field(src, f"{w}.max_batch", r["max_batch"], 1, 1 << 20),
            **{k: num_field(src, f"{w}.{k}", r[k], lo=lo, hi=hi) for k, (lo, hi) in _PERF_NUMBERS.items()},
        )
        out[(p.model, p.chip)] = p
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


def _parse_nodes(src: str, nodes_raw: Any, chips: dict[str, Chip]) -> list[Node]:
    if not isinstance(nodes_raw, list) or not nodes_raw:
        raise FleetError(f"{src}: field 'nodes' must be a non-empty list")
    nodes: list[Node] = []
    paths: dict[str, str] = {}
    for i, n in enumerate(nodes_raw):
        w = f"nodes[{i}]"
        check_fields(src, w, n, _NODE_KEYS, ("name", "chip", "devices"))
        chip = str_field(src, f"{w}.chip", n["chip"])
        if chip not in chips:
            raise FleetError(f"{src}: field '{w}.chip' is '{chip}', not in the chip catalog ({', '.join(sorted(chips))})")
        name = name_field(src, f"{w}.name", n["name"])
        # two names that map to one path component would write into one another's files
        other = paths.setdefault(path_component(name), name)
        if other != name:
            raise FleetError(f"{src}: field '{w}.name' {name!r} is stored under the same path as node {other!r}")
        if any(x.name == name for x in nodes):
            raise FleetError(f"{src}: field 'nodes' has duplicate names ({name!r})")
        nodes.append(Node(name=name, chip=chip, devices=int_field(src, f"{w}.devices", n["devices"], 1, 64),
                          site=name_field(src, f"{w}.site", n.get("site", "default"))))
    return nodes


def _parse_replica(src: str, i: int, r: Any, by_name: dict[str, Node], models: dict[str, Model],
                   perf: dict[tuple[str, str], Perf], chips: dict[str, Chip], used: set) -> Replica:
    w = f"replicas[{i}]"
    check_fields(src, w, r, _REPLICA_KEYS, ("node", "model", "devices"))
    node_name = r["node"]
    if not isinstance(node_name, str) or node_name not in by_name:
        raise FleetError(f"{src}: field '{w}.node' is {node_name!r:.80}, not a node of this fleet")
    node = by_name[node_name]
    model = str_field(src, f"{w}.model", r["model"])
    if model not in models:
        raise FleetError(f"{src}: field '{w}.model' is '{model}', not in the model catalog ({', '.join(sorted(models))})")
    if (model, node.chip) not in perf:
        raise FleetError(f"{src}: field '{w}.model': no perf row for {model} on {node.chip}")
    devs = r["devices"]
    if not isinstance(devs, list) or not devs or not all(isinstance(d, int) and not isinstance(d, bool) for d in devs):
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
    if models[model].weights_gb / p.tp > chips[node.chip].memory_gb * 0.95:
        raise FleetError(f"{src}: field '{w}.devices': {model} does not fit in {p.tp} x {chips[node.chip].memory_gb} GB")
    share = num_field(src, f"{w}.share", r.get("share", 1.0), lo=0, hi=1e6)
    return Replica(id=f"{node_name}-{model}-{i}", node=node_name, model=model, chip=node.chip,
                   devices=tuple(devs), share=share)


def _parse_replicas(src: str, reps_raw: Any, nodes: list[Node], models: dict[str, Model],
                    perf: dict[tuple[str, str], Perf], chips: dict[str, Chip]) -> list[Replica]:
    if not isinstance(reps_raw, list) or not reps_raw:
        raise FleetError(f"{src}: field 'replicas' must be a non-empty list")
    by_name = {n.name: n for n in nodes}
    used: set[tuple[str, int]] = set()
    return [_parse_replica(src, i, r, by_name, models, perf, chips, used) for i, r in enumerate(reps_raw)]


def _read_fleet_file(path: Path) -> dict:
    raw = _load_yaml(path)
    if "extends" in raw:
        base = _load_yaml(resolve_fleet_path(str_field(path, "extends", raw["extends"])))
        merged = copy.deepcopy(base)
        merged.update({k: v for k, v in raw.items() if k != "extends"})
        raw = merged
    check_fields(path, "", raw, _TOP_KEYS, ("nodes", "replicas", "traffic"))
    return raw


def load_fleet(fleet: str | Path) -> Fleet:
    """Load a fleet file or preset name, merged with the catalog, and validate every field."""
    path = resolve_fleet_path(fleet)
    raw = _read_fleet_file(path)
    src = str(path)
    chips_raw = catalog_chips_raw()
    chips_raw.update(check_fields(src, "chips", raw.get("chips") or {}, (raw.get("chips") or {}).keys()))
    chips = parse_chips(src, chips_raw, FleetError)
    mcat = _load_yaml(CATALOG / "models.yaml")
    models = _parse_models(CATALOG / "models.yaml", mcat.get("models"))
    perf = _parse_perf(str(CATALOG / "models.yaml"), mcat.get("perf"))
    perf.update(_parse_perf(src, raw.get("perf") or []))
    tcat = _load_yaml(CATALOG / "tasks.yaml")
    nodes = _parse_nodes(src, raw["nodes"], chips)
    replicas = _parse_replicas(src, raw["replicas"], nodes, models, perf, chips)
    fleet = Fleet(
        name=name_field(src, "name", raw.get("name", path.stem)), source=src, nodes=nodes, replicas=replicas,
        traffic=parse_traffic(src, raw["traffic"], replicas), faults=parse_faults(src, raw.get("faults"), nodes),
        chips=chips, models=models, perf=perf, tasks=tcat["tasks"], token_limits=tcat["limits"],
        language_token_factor=tcat["language_token_factor"],
    )
    _check_routes(src, fleet)
    return fleet


def _check_routes(src: str, fleet: Fleet) -> None:
    """With traffic.routes, every model that has traffic must be sent some task."""
    if not fleet.traffic.routes:
        return
    from collectors.sim.traffic import task_mix

    for mname, v in fleet.traffic.requests_per_s.items():
        try:
            if v > 0:
                task_mix(fleet, mname)
        except ValueError:
            raise FleetError(f"{src}: field 'traffic.routes' sends no task to {mname}, "
                             f"which has traffic.requests_per_s {v}") from None
