"""Atomic, hive-partitioned Parquet spool.

Layout: ``<spool>/<kind>/date=YYYY-MM-DD/node=<node>/<name>.parquet``.
Every file is written under a hidden temporary name in the same directory,
fsynced, then renamed: a reader that only picks ``*.parquet`` files never
sees half a file, even if the writer is killed with SIGKILL.
"""
from __future__ import annotations

import os
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from collectors.names import path_component
from collectors.schema import KINDS

def safe_name(value: str) -> str:
    """A path component that cannot escape its partition directory (see collectors/names.py)."""
    return path_component(value)


def partition_dir(spool: Path | str, kind: str, date: str, node: str) -> Path:
    return Path(spool) / kind / f"date={date}" / f"node={safe_name(node)}"


def write_atomic(table: pa.Table, path: Path | str) -> Path:
    """Write ``table`` to ``path`` so the final name only ever holds a whole file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        pq.write_table(table, tmp, compression="zstd")
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    try:  # make the rename durable
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass
    return path


def write_partition(
    spool: Path | str, kind: str, date: str, node: str, table: pa.Table, name: str | None = None
) -> Path:
    """Write one file of ``kind`` for a (date, node) partition, cast to the spool schema."""
    schema = KINDS[kind]
    table = table.select(schema.names).cast(schema)
    name = name or f"{uuid.uuid4().hex}"
    return write_atomic(table, partition_dir(spool, kind, date, node) / f"{safe_name(name)}.parquet")


def list_files(spool: Path | str, kind: str) -> list[Path]:
    """Whole files of a kind, in a stable order (temporary files are hidden)."""
    root = Path(spool) / kind
    if not root.exists():
        return []
    return sorted(p for p in root.rglob("*.parquet") if not p.name.startswith("."))
