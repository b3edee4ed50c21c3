"""The replica map as data: ``replicas.yaml`` -> the ``replicas`` spool kind.

Which devices serve which model replica is what attribution needs to give a device's energy to the
requests it served. A real fleet declares it in a file (kept with the deployment manifests)::

    aliases: nodes.yaml            # optional: host alias table (collectors.names.load_host_aliases)
    replicas:
      - replica_id: llama70b-r0     # the id request telemetry carries (tokenwatt.replica_id)
        node: gpu-7                 # host name as any source spells it (normalised: gpu-7.example.internal -> gpu-7)
        model: llama-3.1-70b
        chip: nvidia-h100-sxm       # catalog id (collectors/catalog/chips.yaml)
        devices: [0, 1, 2, 3]       # device indices on the node, "<gpu>/<GPU_I_ID>" for a MIG
                                    # instance, or device UUIDs as the exporter reports them
        valid_from: 2026-10-01T00:00:00Z

A replica that moves or changes gets a second entry with the same ``replica_id`` and a later
``valid_from``. ``tokenwatt replicas --file replicas.yaml --spool DIR`` validates the file (every
problem names the file and the field) and writes one file per (valid_from date, node) partition,
named after the YAML file, replacing what an earlier run of the same file wrote. UUIDs are resolved
to device ids from the device samples already in the spool.
"""
from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from collectors.config import fields, load_yaml_mapping, string
from collectors.names import host_name, load_host_aliases, name_problem
from collectors.schema import REPLICAS
from collectors.spool import list_files, safe_name, write_partition

_KEYS = ("replica_id", "node", "model", "chip", "devices", "valid_from")


class ReplicaFileError(ValueError):
    """A replicas file that cannot be used; the message names the file and the field."""


def _name(src: Path, where: str, value: Any) -> str:
    string(src, where, value, error=ReplicaFileError)
    problem = name_problem(value)
    if problem:
        raise ReplicaFileError(f"{src}: field '{where}': {problem}")
    return value


def _valid_from(src: Path, where: str, value: Any) -> dt.datetime:
    if isinstance(value, dt.datetime):
        ts = value
    elif isinstance(value, dt.date):
        ts = dt.datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        try:
            ts = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ReplicaFileError(f"{src}: field '{where}' must be an ISO-8601 time, got {value!r}") from None
    else:
        raise ReplicaFileError(f"{src}: field '{where}' must be an ISO-8601 time, got {value!r}")
    ts = ts.replace(tzinfo=dt.timezone.utc) if ts.tzinfo is None else ts.astimezone(dt.timezone.utc)
    if not dt.datetime(2015, 1, 1, tzinfo=dt.timezone.utc) <= ts <= dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=366):
        raise ReplicaFileError(f"{src}: field '{where}' is out of range (2015 to a year from now): {value!r}")
    return ts


def _uuid_index(spool: Path | None) -> dict[str, str]:
    """device_uuid -> device_id from the device samples in the spool (last seen wins)."""
    out: dict[str, str] = {}
    if spool is None:
        return out
    for f in list_files(spool, "device_samples"):
        t = pq.read_table(f, columns=["device_uuid", "device_id"])
        out.update(zip(t.column("device_uuid").to_pylist(), t.column("device_id").to_pylist()))
    out.pop(None, None)  # type: ignore[arg-type]
    return out


def load_replicas(path: Path | str, spool: Path | str | None = None) -> list[dict[str, Any]]:
    """REPLICAS rows (``device_ids`` a list of device ids) from a replicas file; ReplicaFileError if bad."""
    src = Path(path)
    data = load_yaml_mapping(src, ReplicaFileError)
    fields(src, "", data, ("replicas", "aliases"), ("replicas",), error=ReplicaFileError)
    aliases = load_host_aliases(src.parent / data["aliases"]) if data.get("aliases") else {}
    entries = data["replicas"]
    if not isinstance(entries, list) or not entries:
        raise ReplicaFileError(f"{src}: field 'replicas' must be a non-empty list")
    uuids: dict[str, str] | None = None
    rows, seen, owner = [], set(), {}
    for i, e in enumerate(entries):
        w = f"replicas[{i}]"
        fields(src, w, e, _KEYS, _KEYS, error=ReplicaFileError)
        rid = _name(src, f"{w}.replica_id", e["replica_id"])
        node = host_name(_name(src, f"{w}.node", e["node"]), aliases)
        devices = e["devices"]
        if not isinstance(devices, list) or not devices:
            raise ReplicaFileError(f"{src}: field '{w}.devices' must be a non-empty list of indices or UUIDs")
        ids = []
        for j, d in enumerate(devices):
            if isinstance(d, int) and not isinstance(d, bool) and 0 <= d < 4096:
                ids.append(f"{node}/{d}")
                continue
            if isinstance(d, str) and re.fullmatch(r"\d{1,4}/\d{1,4}", d):  # a MIG instance: <gpu>/<GPU_I_ID>
                ids.append(f"{node}/{d}")
                continue
            _name(src, f"{w}.devices[{j}]", d)
            uuids = _uuid_index(Path(spool) if spool else None) if uuids is None else uuids
            if d not in uuids:
                raise ReplicaFileError(f"{src}: field '{w}.devices[{j}]': UUID {d!r} is in no device sample in the "
                                       "spool (run the collector first, or give the device index)")
            ids.append(uuids[d])
        if len(set(ids)) != len(ids):
            raise ReplicaFileError(f"{src}: field '{w}.devices' names a device twice")
        valid_from = _valid_from(src, f"{w}.valid_from", e["valid_from"])
        if (rid, valid_from) in seen:
            raise ReplicaFileError(f"{src}: field '{w}': replica {rid!r} is given twice from {valid_from}")
        seen.add((rid, valid_from))
        for d in ids:
            other = owner.get((d, valid_from))
            if other is not None and other != rid:
                raise ReplicaFileError(f"{src}: field '{w}.devices': {d} also serves {other!r} from {valid_from}")
            owner[(d, valid_from)] = rid
        rows.append({"replica_id": rid, "node": node, "model": _name(src, f"{w}.model", e["model"]),
                     "chip": _name(src, f"{w}.chip", e["chip"]), "device_ids": ids, "valid_from": valid_from})
    return rows


def write_replicas(spool: Path | str, rows: list[dict[str, Any]], name: str) -> list[Path]:
    """One file per (valid_from date, node); files of the same ``name`` elsewhere are removed."""
    as_list = pa.types.is_list(REPLICAS.field("device_ids").type)
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        row = {**r, "device_ids": r["device_ids"] if as_list else ",".join(r["device_ids"])}
        groups.setdefault((r["valid_from"].strftime("%Y-%m-%d"), r["node"]), []).append(row)
    written = [write_partition(spool, "replicas", date, node, pa.Table.from_pylist(g, schema=REPLICAS), name=name)
               for (date, node), g in sorted(groups.items())]
    for f in list_files(spool, "replicas"):
        if f.name == f"{safe_name(name)}.parquet" and f not in written:
            f.unlink()
    return written


def run_replicas(args: Any) -> int:
    """``tokenwatt replicas --file F --spool DIR``."""
    import json
    import sys

    try:
        rows = load_replicas(args.file, args.spool)
    except ReplicaFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    files = write_replicas(args.spool, rows, f"replicas-{Path(args.file).stem}")
    print(json.dumps({"replicas": len(rows), "files": [str(f) for f in files]}, indent=2))
    return 0
