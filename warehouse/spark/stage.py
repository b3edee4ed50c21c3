"""Stage spool files on the executors: each task opens the files it is given, exactly as listed,
and aligns them with the DuckDB loader's :func:`warehouse.ingest.conform.conform`.

A file refused whole (a symbolic link, unreadable, lacking required columns) comes out as one row
with ``_row = -1`` and ``_whole = 'status|field|reason'``; the driver never reads a file's rows.
"""
from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import pyarrow as pa

from collectors.schema import KINDS

WHOLE_COLUMNS = [("_file", pa.string()), ("_row", pa.int64()), ("_pdate", pa.date32()), ("_pre", pa.string()),
                 ("_whole", pa.string()), ("_nrows", pa.int64())]


def staged_schema(kind: str) -> pa.Schema:
    return pa.schema(list(KINDS[kind]) + [pa.field(n, t) for n, t in WHOLE_COLUMNS])


def file_id(rel: str) -> str:
    """The partition directory name of a file's rows (a hash: names are data, never paths)."""
    return hashlib.sha1(rel.encode()).hexdigest()[:20]


def _whole(kind: str, rel: str, pdate, status: str, fld: str | None, reason: str, n: int = 0) -> pa.Table:
    cols = {"_file": [rel], "_row": [-1], "_pdate": [pdate], "_whole": [f"{status}|{fld or ''}|{reason[:500]}"],
            "_nrows": [n]}
    schema = staged_schema(kind)
    return pa.Table.from_arrays([pa.array(cols.get(f.name, [None]), f.type) for f in schema], schema=schema)


def stage_one(spool: str, kind: str, rel: str, date: str | None, link: bool) -> pa.Table:
    """One file's staged rows (or its one whole-file refusal row)."""
    from warehouse.ingest.conform import conform
    from warehouse.ingest.load import SYMLINK_REASON, _why, read_spool_file

    pdate = dt.date.fromisoformat(date) if date else None
    if link:
        return _whole(kind, rel, pdate, "rejected", None, SYMLINK_REASON)
    try:
        table = read_spool_file(Path(spool) / rel)
    except Exception as exc:  # truncated or corrupt: recorded, the load goes on
        return _whole(kind, rel, pdate, "unreadable", None, f"unreadable file: {_why(exc, Path(spool))}")
    conformed, missing, _notes = conform(table, kind)
    if missing:
        return _whole(kind, rel, pdate, "rejected", ",".join(missing),
                      f"file lacks required column(s): {', '.join(missing)}", conformed.num_rows)
    n = conformed.num_rows
    names = list(KINDS[kind].names) + ["_row", "_pre"]
    cols = [conformed.column(c) for c in names]
    cols += [pa.array([rel] * n, pa.string()), pa.array([pdate] * n, pa.date32()),
             pa.nulls(n, pa.string()), pa.nulls(n, pa.int64())]
    t = pa.Table.from_arrays(cols, names=names + ["_file", "_pdate", "_whole", "_nrows"])
    return t.select(staged_schema(kind).names).cast(staged_schema(kind))


def stage_batches(spool: str, kind: str):
    """The function ``mapInArrow`` runs: batches of (rel, date, link) in, staged rows out."""
    def run(batches):
        for b in batches:
            for rel, date, link in zip(*(b.column(i).to_pylist() for i in range(3))):
                yield from stage_one(spool, kind, rel, date, link).to_batches(max_chunksize=65536)
    return run
