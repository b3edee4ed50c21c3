"""Rows a collector cannot store, kept with their reason instead of blocking the rows around them.

Before rows become a spool file, each is checked: identifier columns (node, device, replica,
model names) under the identifier policy of collectors/names.py, the row's time a real UTC
datetime, and every value of a kind the spool schema can hold (a device index of 3000000000 does
not fit ``int32``, a token count of 2**70 does not fit ``int64``). A row that fails is a
:class:`Reject` (field and reason); the others are written as usual. Rejects are kept as JSON Lines
under ``<spool>/rejects/<kind>/<name>.jsonl`` (one file per flush, written atomically; the loader
does not read them), so an operator sees what was refused and why.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable

import pyarrow as pa

from collectors.names import name_problem, path_component
from collectors.schema import KINDS

#: identifier columns per kind (checked with collectors.names.name_problem when not null)
IDENTIFIERS = {
    "device_samples": ("node", "device_id", "chip"),
    "requests": ("request_id", "node", "replica_id", "model"),
    "replicas": ("replica_id", "node", "model", "chip"),
}
#: the column whose UTC day names a row's partition
TIME_COLUMN = {"device_samples": "ts", "requests": "arrival_ts", "replicas": "valid_from"}
_ARROW_ERRORS = (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError, TypeError,
                 ValueError)


@dataclass
class Reject:
    """One row refused: the field at fault and why."""

    field: str
    reason: str
    row: Any

    def record(self) -> dict[str, Any]:
        return {"field": self.field, "reason": self.reason, "row": self.row}


def _structure_problem(row: Any, kind: str) -> tuple[str, str] | None:
    if not isinstance(row, dict):
        return "", f"not a row mapping ({type(row).__name__})"
    for column in IDENTIFIERS[kind]:
        value = row.get(column)
        if value is None and column == "node":
            return column, "missing node name"
        if value is not None:
            problem = name_problem(value)
            if problem:
                return column, f"invalid name: {problem}"
    ts = row.get(TIME_COLUMN[kind])
    if not isinstance(ts, datetime) or ts.tzinfo is None:
        return TIME_COLUMN[kind], f"not a UTC datetime: {ts!r:.60}"
    return None


def _value_problem(row: dict, schema: pa.Schema) -> tuple[str, str] | None:
    for f in schema:
        value = row.get(f.name)
        if value is None:
            continue
        try:
            pa.array([value], type=f.type)
        except _ARROW_ERRORS as exc:
            return f.name, f"{value!r:.60} does not fit {f.type}: {type(exc).__name__}"
    return None


def partition_rows(rows: Iterable[Any], kind: str) -> tuple[dict[tuple[str, str], list[dict]], list[Reject]]:
    """Rows grouped by (UTC date of their time column, node); rows that cannot be placed are rejected."""
    groups: dict[tuple[str, str], list[dict]] = {}
    rejects: list[Reject] = []
    column = TIME_COLUMN[kind]
    for row in rows:
        problem = _structure_problem(row, kind)
        if problem:
            rejects.append(Reject(problem[0], problem[1], row))
            continue
        groups.setdefault((row[column].strftime("%Y-%m-%d"), row["node"]), []).append(row)
    return groups, rejects


def to_table(rows: list[dict], kind: str) -> tuple[pa.Table, list[dict], list[Reject]]:
    """(table of the rows that fit the spool schema, those rows, rejects for the others)."""
    schema = KINDS[kind]
    try:
        return pa.Table.from_pylist(rows, schema=schema), rows, []
    except _ARROW_ERRORS:
        pass  # find the rows at fault, one by one
    good: list[dict] = []
    rejects: list[Reject] = []
    for row in rows:
        problem = _value_problem(row, schema)
        if problem:
            rejects.append(Reject(problem[0], problem[1], row))
        else:
            good.append(row)
    return pa.Table.from_pylist(good, schema=schema), good, rejects


def write_rejects(spool: Path | str, kind: str, name: str, rejects: list[Reject]) -> Path | None:
    """Append nothing, replace nothing: one new JSON Lines file of ``rejects`` (None when empty)."""
    if not rejects:
        return None
    path = Path(spool) / "rejects" / kind / f"{path_component(name)}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        for r in rejects:
            fh.write(json.dumps({"kind": kind, **r.record()}, default=str, sort_keys=True) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return path


def read_rejects(spool: Path | str, kind: str) -> list[dict[str, Any]]:
    """Every reject record of ``kind`` in the spool (for operators and tests)."""
    root = Path(spool) / "rejects" / kind
    out: list[dict[str, Any]] = []
    for path in sorted(root.glob("*.jsonl")) if root.is_dir() else []:
        out.extend(json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line)
    return out
