"""Load the Parquet spool into DuckDB schema ``raw``: exactly once, nothing lost.

* The manifest (manifest.py) remembers every file by path, fingerprint, size and SHA-256: an
  unchanged file is not read, a byte-identical copy is recorded as a duplicate, a changed file
  replaces its own earlier rows (and quarantine rows).
* Files load in batches sized by their bytes on disk (``TOKENWATT_LOAD_BATCH_BYTES``, default
  64 MiB, from the listing: no file is opened to size a batch; ``TOKENWATT_LOAD_BATCH_ROWS``, if
  set, also caps a batch's rows, from the files' footers): a batch's rows,
  quarantine rows, manifest rows and dirty-day marks commit in one transaction, so a load killed
  at any point leaves the warehouse as it was before that batch, and a rerun converges. A batch
  that fails is retried file by file; a file that still fails is recorded (status ``error``,
  retried on the next load).
* Each file is opened as exactly the path listed (never through a reader that globs, never
  following a symbolic link) and read once: its SHA-256 (when the listing did not need it) is
  taken from the same bytes that are parsed, aligned to the schema (conform.py) and staged; the rules
  (rules.py) then run set-based over the staged rows (validate.py). A symbolic link is refused
  (``rejected``, with a quarantine row); an unreadable file is recorded and the load goes on.
* Requests load after replicas, and a request naming a replica the warehouse does not know is
  quarantined (``unknown replica``); once that replica arrives its files are reloaded.
* Every UTC day whose results a load changes is marked in ``raw.dirty_days`` (days.py).
"""
from __future__ import annotations

import datetime as dt
import hashlib
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
DEFAULT_BATCH_BYTES = 64 << 20
#: rows per Arrow batch of the staged table: DuckDB scans a registered table batch by batch, one
#: batch per thread, so a file read as one million-row chunk would be scanned by one thread
SCAN_CHUNK_ROWS = 122_880
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


def _batch_rows() -> int | None:
    """An optional cap on a batch's rows (``TOKENWATT_LOAD_BATCH_ROWS``); none by default."""
    try:
        v = os.environ.get("TOKENWATT_LOAD_BATCH_ROWS")
        return max(1, int(v)) if v else None
    except ValueError:
        return None


def _batch_bytes() -> int:
    try:
        return max(1, int(os.environ.get("TOKENWATT_LOAD_BATCH_BYTES", DEFAULT_BATCH_BYTES)))
    except ValueError:
        return DEFAULT_BATCH_BYTES


def load_spool(con: duckdb.DuckDBPyConnection, spool: Path | str, kinds=LOAD_ORDER, progress: bool = False,
               dates: tuple[str, str] | None = None, batch_rows: int | None = None,
               on_batch=None, batch_bytes: int | None = None) -> LoadReport:
    """Load every new or changed file of the spool (of the ``date=`` window ``dates``, if given,
    plus undated files). Safe to rerun; safe to kill; never stops on a bad file.

    A batch holds files up to ``batch_bytes`` bytes on disk and, if given, ``batch_rows`` rows."""
    spool = Path(spool)
    rep = LoadReport()
    t0 = time.perf_counter()
    batch_rows = batch_rows or _batch_rows()
    batch_bytes = batch_bytes or _batch_bytes()
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
        batches = _batches(spool, [p for p in todo if p.state != "duplicate"], batch_bytes, batch_rows)
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


def _batches(spool: Path, items: list, batch_bytes: int, batch_rows: int | None = None) -> list[list]:
    """Consecutive files up to ``batch_bytes`` bytes (the listed sizes) and, only if a row cap is
    given, ``batch_rows`` rows (the footers' counts); a file larger than the cap is a batch of its own."""
    batches, cur, cur_rows, cur_bytes = [], [], 0, 0
    for p in items:
        size = 0 if p.file.link else p.file.size
        n = 0 if p.file.link or batch_rows is None else _footer_rows(spool / p.file.rel)
        if cur and (cur_bytes + size > batch_bytes or (batch_rows is not None and cur_rows + n > batch_rows)):
            batches.append(cur)
            cur, cur_rows, cur_bytes = [], 0, 0
        cur.append(p)
        cur_rows += n
        cur_bytes += size
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


def read_spool_bytes(path: Path) -> bytes:
    """The file's bytes, read from exactly this path (no glob expansion, no symbolic link followed)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    with os.fdopen(fd, "rb") as fh:
        return fh.read()


def read_spool_file(path: Path):
    """The file's table, read from exactly this path (no glob expansion, no symbolic link followed)."""
    return _parse(read_spool_bytes(path))


def _parse(data: bytes, kind: str | None = None) -> pa.Table:
    """The table of a file's bytes; the text columns of ``kind``'s schema are read dictionary-encoded
    (as Parquet stores them: no string is copied for a column of a few distinct values)."""
    if kind in KINDS:
        try:
            text = {f.name for f in KINDS[kind] if pa.types.is_string(f.type)}
            names = pq.ParquetFile(pa.BufferReader(data)).schema_arrow.names
            enc = [c for c in names if c in text and names.count(c) == 1]
            if enc:
                return pq.ParquetFile(pa.BufferReader(data), read_dictionary=enc).read()
        except Exception:  # anything odd about the file: read it plainly (and fail there, if it must)
            pass
    return pq.read_table(pa.BufferReader(data))


def _stage_file(con, spool: Path, kind: str, p) -> tuple:
    """Read (once: the digest, when the listing did not take it, is of the bytes parsed) and align
    one file; returns (status, good, bad) when it is refused whole, else ("staged", notes, table,
    digest): the table with the raw columns, ``_file``, ``_row``, ``_pdate``, ``_pre``."""
    rel = p.file.rel
    digest = p.sha256
    if p.file.link:
        _quarantine_file(con, kind, rel, None, SYMLINK_REASON)
        record(con, p.file, digest, 0, 0, "rejected", SYMLINK_REASON)
        return ("rejected", 0, 0)
    try:
        data = read_spool_bytes(spool / rel)
        if digest is None:
            digest = hashlib.sha256(data).hexdigest()
        table = _parse(data, kind)
        del data
    except Exception as exc:  # truncated or corrupt: record it, keep going
        _quarantine_file(con, kind, rel, None, f"unreadable file: {_why(exc, spool)}")
        record(con, p.file, digest, 0, 0, "unreadable", _why(exc, spool)[:500])
        return ("unreadable", 0, 0)
    conformed, missing, notes = conform(table, kind)
    if missing:
        n = conformed.num_rows
        _quarantine_file(con, kind, rel, ",".join(missing), f"file lacks required column(s): {', '.join(missing)}")
        record(con, p.file, digest, 0, n, "rejected", f"missing columns {missing}")
        return ("rejected", 0, n)
    return ("staged", "; ".join(notes) or None, _staged_table(conformed, kind, rel, p.file.date), digest)


def _staged_table(conformed: pa.Table, kind: str, rel: str, date: str | None) -> pa.Table:
    """The staged rows of one file, in the column order of the staging relation ``_n`` (no copy
    of the data: the file's name and partition date are run-length columns)."""
    n = conformed.num_rows
    pdate = dt.date.fromisoformat(date) if date else None
    extra = {"_file": pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, np.int32)), pa.array([rel], pa.string())),
             "_pdate": pa.repeat(pa.scalar(pdate, pa.date32()), n)}
    names = list(KINDS[kind].names) + ["_file", "_row", "_pdate", "_pre"]
    cols = [extra[c] if c in extra else conformed.column(c) for c in names]
    table = pa.Table.from_arrays(cols, names=names)
    # zero-copy slices of at most SCAN_CHUNK_ROWS rows: DuckDB's threads scan them in parallel
    return pa.Table.from_batches(table.to_batches(max_chunksize=SCAN_CHUNK_ROWS), table.schema)


def _plain(table: pa.Table) -> pa.Table:
    """``table`` with its dictionary-encoded text columns decoded (``_file`` stays encoded)."""
    for i, f in enumerate(table.schema):
        if pa.types.is_dictionary(f.type) and f.name != "_file":
            table = table.set_column(i, f.name, table.column(i).cast(f.type.value_type))
    return table


def _concat(tables: list[pa.Table]) -> pa.Table:
    """One table of the staged files; where their column types differ (a text column encoded in
    one file, not in another), decoded first."""
    if any(t.schema != tables[0].schema for t in tables[1:]):
        tables = [_plain(t) for t in tables]
    return pa.concat_tables(tables, promote_options="permissive")


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
    digests: dict[str, str | None] = {}
    for p in batch:
        got = _stage_file(con, spool, kind, p)
        if got[0] == "staged":
            notes[p.file.rel] = got[1]
            tables.append(got[2])
            digests[p.file.rel] = got[3]
        else:
            result[p.file.rel] = got
    staged = [p for p in batch if p.file.rel not in result]
    if staged:
        # the staged rows stay in Arrow (the files as read): DuckDB scans them in place
        con.register("_n", tables[0] if len(tables) == 1 else _concat(tables))
        try:
            counts, spans = validate_and_insert(con, kind, col_list)
        finally:
            con.unregister("_n")
        rep.dirty_dates |= mark_dirty(con, kind, spans)
        for p in staged:
            good, bad = counts.get(p.file.rel, (0, 0))
            record(con, p.file, digests[p.file.rel], good, bad, "loaded", notes.get(p.file.rel))
            result[p.file.rel] = ("loaded", good, bad)
    return result
