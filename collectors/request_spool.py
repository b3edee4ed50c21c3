"""REQUESTS rows -> atomic spool files, one per (arrival date, node); rows the spool cannot hold are
refused with their reason (collectors/rejects.py) instead of blocking the others."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import pyarrow as pa

from collectors.rejects import Reject, partition_rows, to_table
from collectors.schema import REQUESTS
from collectors.spool import write_partition


def requests_table(rows: list[dict[str, Any]]) -> pa.Table:
    """Typed REQUESTS table from row dicts."""
    return pa.Table.from_pylist(rows, schema=REQUESTS)


@dataclass
class WriteResult:
    """What :func:`write_requests` did: files written, rows refused, rows whose write failed."""

    files: list[Path] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    unwritten: list[dict[str, Any]] = field(default_factory=list)
    error: Exception | None = None


def write_requests(spool: Path | str, rows: list[dict[str, Any]], name: str) -> WriteResult:
    """Write rows as one atomic file per (arrival date, node) partition, all named ``name``.

    A row the spool cannot hold is refused (``rejects``) and the others written; a partition whose
    write fails leaves its rows in ``unwritten`` while the other partitions are written.
    """
    result = WriteResult()
    groups, result.rejects = partition_rows(rows, "requests")
    for (date, node), group in sorted(groups.items()):
        table, good, bad = to_table(group, "requests")
        result.rejects.extend(bad)
        if not good:
            continue
        try:
            result.files.append(write_partition(spool, "requests", date, node, table, name=name))
        except Exception as exc:  # noqa: BLE001 - the caller keeps these rows
            result.unwritten.extend(good)
            result.error = exc
    return result


def plain_record(record: Any) -> Any:
    """The record as it can be written to a rejects file."""
    return dict(record) if isinstance(record, Mapping) else repr(record)[:1000]
