"""Load the Parquet spool into DuckDB schema ``raw``: exactly once, nothing lost.

* The manifest (manifest.py) remembers every file by path, fingerprint, size and SHA-256: an
  unchanged file is not read, a byte-identical copy is recorded as a duplicate, a changed file
  replaces its own earlier rows (and quarantine rows).
* Files load in batches (``TOKENWATT_LOAD_BATCH_ROWS`` rows, default 2,000,000): a batch's rows,
  quarantine rows, manifest rows and dirty-day marks commit in one transaction, so a load killed
  at any point leaves the warehouse as it was before that batch, and a rerun converges. A batch
  that fails is retried file by file; a file that still fails is recorded (status ``error``,
  retried on the next load).
* Each file is opened as exactly the path listed (never through a reader that globs, never
  following a symbolic link), aligned to the schema (conform.py) and staged; the rules
  (rules.py) then run set-based over the staged rows (validate.py). A symbolic link is refused
  (``rejected``, with a quarantine row); an unreadable file is recorded and the load goes on.
* Requests load after replicas, and a request naming a replica the warehouse does not know is
  quarantined (``unknown replica``); once that replica arrives its files are reloaded.
* Every UTC day whose results a load changes is marked in ``raw.dirty_days`` (days.py).
"""
from __future__ import annotations

import datetime as dt
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from collectors.schema import KINDS
from warehouse.ingest.conform import conform
from warehouse.ingest.days import mark_dirty, mark_dirty_from_rows
from warehouse.ingest.ddl import connect  # noqa: F401  (callers open the warehouse with the loader)
from warehouse.ingest.manifest import classify, read_manifest, record, requeue_unknown_replicas
from warehouse.ingest.scan import scan_spool
from warehouse.ingest.validate import validate_and_insert

LOAD_ORDER = ("replicas", "device_samples", "requests", "server_counters", "host_samples")
DEFAULT_BATCH_ROWS = 2_000_000
SYMLINK_REASON = "symbolic link refused: spool files must be regular files"
log = logging.getLogger("tokenwatt.load")


@dataclass
class LoadReport:
    files_seen: int = 0
    files_loaded: int = 0
    files_skipped: int = 0
    files_duplicate: int = 0
    files_unreadable: int = 0
    files_rejected: int = 0
    files_failed: int = 0
    files_replaced: int = 0
    batches: int = 0
    rows_loaded: dict = field(default_factory=dict)
    rows_quarantined: dict = field(default_factory=dict)
    loaded_dates: set = field(default_factory=set)   # partition dates of files loaded
    dirty_dates: set = field(default_factory=set)    # UTC days whose results this load changed
    elapsed_s: float = 0.0

    def as_dict(self) -> dict:
        d = dict(self.__dict__)
        d["loaded_dates"] = sorted(self.loaded_dates)
        d["dirty_dates"] = sorted(self.dirty_dates)
        return d


def _batch_rows() -> int:
    try:
        return max(1, int(os.environ.get("TOKENWATT_LOAD_BATCH_ROWS", DEFAULT_BATCH_ROWS)))
    except ValueError:
        return DEFAULT_BATCH_ROWS


def load_spool(con: duckdb.DuckDBPyConnection, spool: Path | str, kinds=LOAD_ORDER, progress: bool = False,
               dates: tuple[str, str] | None = None, batch_rows: int | None = None,
               on_batch=None) -> LoadReport:
    """Load every new or changed file of the spool (of the ``date=`` window ``dates``, if given,
    plus undated files). Safe to rerun; safe to kill; never stops on a bad file."""
    spool = Path(spool)
    rep = LoadReport()
    t0 = time.perf_counter()
    batch_rows = batch_rows or _batch_rows()
    kinds = [k for k in LOAD_ORDER if k in kinds] + [k for k in kinds if k not in LOAD_ORDER]
    files = scan_spool(spool, kinds, dates)
    rep.files_seen = len(files)
    for kind in kinds:
        if kind == "requests":  # replicas that arrived since: reload the requests that named them
            requeue_unknown_replicas(con)
        manifest = read_manifest(con)
        listed = [f for f in files if f.kind == kind]
        todo = classify(listed, manifest, spool)
        rep.files_skipped += len(listed) - len(todo)
        _refresh_fingerprints(con, listed, {p.file.rel for p in todo}, manifest)
        _record_duplicates(con, [p for p in todo if p.state == "duplicate"], manifest, rep)
        batches = _batches(spool, [p for p in todo if p.state != "duplicate"], batch_rows)
        for bi, batch in enumerate(batches):
            _load_batch(con, spool, kind, batch, manifest, rep)
            rep.batches += 1
            msg = (f"load: {kind} batch {bi + 1}/{len(batches)} committed ({len(batch)} files; "
                   f"{rep.rows_loaded.get(kind, 0):,} rows loaded, {rep.rows_quarantined.get(kind, 0):,} quarantined)")
            log.info(msg)
            if progress:
                print(f"  {msg}", file=sys.stderr, flush=True)
            if on_batch is not None:
                on_batch(msg)
    rep.elapsed_s = time.perf_counter() - t0
    return rep


def _refresh_fingerprints(con, files, pending_rel: set, manifest: dict) -> None:
    """Touched-but-identical files: remember their new fingerprint so they are not hashed again."""
    touched = [f for f in files if f.rel not in pending_rel and f.rel in manifest
               and manifest[f.rel][0] != f.fingerprint]
    if touched:
        con.execute("begin")
        for f in touched:
            con.execute("update raw.manifest set fingerprint = ? where file = ?", [f.fingerprint, f.rel])
        con.execute("commit")


def _record_duplicates(con, dups: list, manifest: dict, rep: LoadReport) -> None:
    if not dups:
        return
    con.execute("begin")
    try:
        for p in dups:
            if p.file.rel in manifest:  # it had rows of its own before it became a copy
                rep.dirty_dates |= mark_dirty_from_rows(con, p.file.kind, [p.file.rel])
                con.execute(f"delete from raw.{p.file.kind} where _file = ?", [p.file.rel])
                con.execute("delete from raw.quarantine where file = ?", [p.file.rel])
            record(con, p.file, p.sha256, 0, 0, "duplicate", f"byte-identical to {p.copy_of}")
            rep.files_duplicate += 1
        con.execute("commit")
    except Exception:
        _rollback(con)
        raise


def _batches(spool: Path, items: list, batch_rows: int) -> list[list]:
    batches, cur, cur_rows = [], [], 0
    for p in items:
        n = 0 if p.file.link else _footer_rows(spool / p.file.rel)
        if cur and cur_rows + n > batch_rows:
            batches.append(cur)
            cur, cur_rows = [], 0
        cur.append(p)
        cur_rows += n
    if cur:
        batches.append(cur)
    return batches


def _why(exc: Exception, spool: Path) -> str:
    """An error message without the spool's location (the warehouse must not depend on it)."""
    msg = f"{type(exc).__name__}: {exc}"
    for prefix in {str(spool) + "/", str(Path(spool).resolve()) + "/"}:
        msg = msg.replace(prefix, "")
    return msg


def _rollback(con) -> None:
    try:
        con.execute("rollback")
    except duckdb.Error:  # a failed commit has already rolled back
        pass


def _footer_rows(path: Path) -> int:
    try:
        return pq.ParquetFile(path).metadata.num_rows
    except Exception:
        return 0


def _load_batch(con, spool: Path, kind: str, batch: list, manifest: dict, rep: LoadReport) -> None:
    """Load ``batch`` in one transaction; on any failure retry its files one by one."""
    con.execute("begin")
    try:
        stats = _stage_and_insert(con, spool, kind, batch, manifest, rep)
        con.execute("commit")
    except Exception as exc:
        _rollback(con)
        if len(batch) > 1:
            log.warning("load: a batch of %d %s files failed (%s); loading them one by one", len(batch), kind, exc)
            for p in batch:
                _load_batch(con, spool, kind, [p], manifest, rep)
            return
        p = batch[0]
        log.error("load: %s failed: %s", p.file.rel, exc)
        con.execute("begin")
        con.execute("delete from raw.quarantine where file = ?", [p.file.rel])
        _quarantine_file(con, kind, p.file.rel, None, f"load failed: {_why(exc, spool)}")
        record(con, p.file, p.sha256, 0, 0, "error", _why(exc, spool)[:500])
        con.execute("commit")
        rep.files_failed += 1
        return
    _count(batch, stats, kind, manifest, rep)


def _count(batch: list, stats: dict, kind: str, manifest: dict, rep: LoadReport) -> None:
    for p in batch:
        status, good, bad = stats[p.file.rel]
        rep.rows_loaded[kind] = rep.rows_loaded.get(kind, 0) + good
        rep.rows_quarantined[kind] = rep.rows_quarantined.get(kind, 0) + bad
        if status == "unreadable":
            rep.files_unreadable += 1
        elif status == "rejected":
            rep.files_rejected += 1
        else:
            rep.files_loaded += 1
            if p.file.date:
                rep.loaded_dates.add(p.file.date)
        if p.state in ("changed", "retry") and manifest.get(p.file.rel, (None, None, None))[2] == "loaded":
            rep.files_replaced += 1


def _quarantine_file(con, kind: str, rel: str, fld: str | None, reason: str) -> None:
    con.execute("insert into raw.quarantine values (?, ?, -1, ?, ?, null, now())", [kind, rel, fld, reason[:500]])


def read_spool_file(path: Path):
    """The file's table, read from exactly this path (no glob expansion, no symbolic link followed)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    with os.fdopen(fd, "rb") as fh:
        return pq.read_table(fh)


def _stage_file(con, spool: Path, kind: str, p) -> tuple:
    """Read and align one file; returns (status, good, bad) when it is refused whole, else
    ("staged", notes, table): the table with the raw columns, ``_file``, ``_row``, ``_pdate``, ``_pre``."""
    rel = p.file.rel
    if p.file.link:
        _quarantine_file(con, kind, rel, None, SYMLINK_REASON)
        record(con, p.file, p.sha256, 0, 0, "rejected", SYMLINK_REASON)
        return ("rejected", 0, 0)
    try:
        table = read_spool_file(spool / rel)
    except Exception as exc:  # truncated or corrupt: record it, keep going
        _quarantine_file(con, kind, rel, None, f"unreadable file: {_why(exc, spool)}")
        record(con, p.file, p.sha256, 0, 0, "unreadable", _why(exc, spool)[:500])
        return ("unreadable", 0, 0)
    conformed, missing, notes = conform(table, kind)
    if missing:
        n = conformed.num_rows
        _quarantine_file(con, kind, rel, ",".join(missing), f"file lacks required column(s): {', '.join(missing)}")
        record(con, p.file, p.sha256, 0, n, "rejected", f"missing columns {missing}")
        return ("rejected", 0, n)
    return ("staged", "; ".join(notes) or None, _staged_table(conformed, kind, rel, p.file.date))


def _staged_table(conformed: pa.Table, kind: str, rel: str, date: str | None) -> pa.Table:
    """The staged rows of one file, in the column order of the staging relation ``_n`` (no copy
    of the data: the file's name and partition date are run-length columns)."""
    n = conformed.num_rows
    pdate = dt.date.fromisoformat(date) if date else None
    extra = {"_file": pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, np.int32)), pa.array([rel], pa.string())),
             "_pdate": pa.repeat(pa.scalar(pdate, pa.date32()), n)}
    names = list(KINDS[kind].names) + ["_file", "_row", "_pdate", "_pre"]
    cols = [extra[c] if c in extra else conformed.column(c) for c in names]
    return pa.Table.from_arrays(cols, names=names)


def _stage_and_insert(con, spool: Path, kind: str, batch: list, manifest: dict, rep: LoadReport) -> dict:
    """Inside an open transaction: read, validate and insert ``batch``; returns per-file status."""
    col_list = ", ".join(KINDS[kind].names)
    result: dict[str, tuple[str, int, int]] = {}
    notes: dict[str, str | None] = {}
    # files replaced by new content: forget their rows first (their days become dirty)
    replaced = [p.file.rel for p in batch if p.file.rel in manifest]
    if replaced:
        rep.dirty_dates |= mark_dirty_from_rows(con, kind, replaced)
        con.execute(f"delete from raw.{kind} where _file in (select unnest(?::varchar[]))", [replaced])
        con.execute("delete from raw.quarantine where file in (select unnest(?::varchar[]))", [replaced])
    tables = []
    for p in batch:
        got = _stage_file(con, spool, kind, p)
        if got[0] == "staged":
            notes[p.file.rel] = got[1]
            tables.append(got[2])
        else:
            result[p.file.rel] = got
    staged = [p for p in batch if p.file.rel not in result]
    if staged:
        # the staged rows stay in Arrow (the files as read): DuckDB scans them in place
        con.register("_n", tables[0] if len(tables) == 1 else pa.concat_tables(tables, promote_options="permissive"))
        try:
            counts, spans = validate_and_insert(con, kind, col_list)
        finally:
            con.unregister("_n")
        rep.dirty_dates |= mark_dirty(con, kind, spans)
        for p in staged:
            good, bad = counts.get(p.file.rel, (0, 0))
            record(con, p.file, p.sha256, good, bad, "loaded", notes.get(p.file.rel))
            result[p.file.rel] = ("loaded", good, bad)
    return result
