"""Load the Parquet spool into DuckDB schema ``raw``: exactly once, nothing lost.

* A manifest (``raw.manifest``) remembers every file by path, fingerprint (size, mtime, inode),
  size and SHA-256. A file whose fingerprint is unchanged is not even read; a file whose bytes are
  unchanged is skipped; a byte-identical copy under another name is recorded as a duplicate and
  skipped; a file whose content changed replaces its own earlier rows (and quarantine rows).
* Files load in batches (``TOKENWATT_LOAD_BATCH_ROWS`` rows, default 2,000,000): a batch's rows,
  quarantine rows, manifest rows and dirty-day marks commit in one transaction, so a load killed
  at any point leaves the warehouse as it was before that batch, and a rerun converges. If a batch
  fails for any reason its files are retried one by one, so one bad file never blocks the others;
  a file that still fails is recorded (status ``error``, retried on the next load).
* Files with exactly the spool schema are read by DuckDB directly; any other file (extra, missing
  or mistyped columns) goes through a tolerant path that aligns it to the schema value by value:
  a value that cannot be converted quarantines its row with reason ``wrong type``; an extra column
  is ignored (noted in the manifest); a missing optional column becomes null; a missing required
  column rejects the file (one quarantine row, ``row = -1``). An unreadable file (truncated,
  garbage) is recorded with its reason and the load goes on.
* Rows are validated in SQL (types, physical bounds per chip, timestamps, token counts,
  duplicates of the same key within the batch or already loaded); refused rows go to
  ``raw.quarantine`` with file, row, field, reason and the offending value; good rows still load.
* Every UTC day whose results a load changes is marked in ``raw.dirty_days`` until the
  downstream assets have been rebuilt for it (see warehouse/ingest_state.py).
"""
from __future__ import annotations

import datetime as dt
import logging
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from collectors.schema import KINDS

from warehouse.ingest.manifest import SpoolFile, classify, read_manifest, scan_spool

SQL_DIR = Path(__file__).parent / "sql"
LOAD_ORDER = ("replicas", "device_samples", "requests")
DEFAULT_BATCH_ROWS = 2_000_000
log = logging.getLogger("tokenwatt.load")

REQUIRED = {
    "device_samples": {"ts", "device_id", "node", "chip"},
    "requests": {"request_id", "replica_id", "arrival_ts", "finish_ts", "prompt_tokens", "completion_tokens"},
    "replicas": {"replica_id", "node", "device_ids"},
}


def _chip_rated_sql() -> str:
    """SQL CASE giving each catalog chip's rated power (null for chips the catalog lacks)."""
    try:
        from collectors.catalog import load_chips

        whens = " ".join(f"when '{k}' then {float(v.rated_power_w)}" for k, v in load_chips().items()
                         if "'" not in k)
    except Exception:  # no catalog: the reported power limit (or 1000 W) bounds power
        whens = ""
    return f"(case chip {whens} else null end)" if whens else "null::double"


#: highest plausible power: twice the larger of the chip's rated power and its reported power limit
POWER_BOUND = (f"2 * coalesce(greatest({_chip_rated_sql()}, power_limit_w), {_chip_rated_sql()}, "
               "power_limit_w, 1000)")


def _finite(c: str) -> str:
    return f"(isnan({c}) or isinf({c}))"


#: the file's date= partition as a date (null for undated files), set per row by the loader
PART_LO = "_pdate - interval 1 day"
PART_HI = "_pdate + interval 2 day"

# (field, SQL condition, reason): the first condition that holds refuses the row
CHECKS = {
    "device_samples": [
        ("ts", "ts is null", "missing timestamp"),
        ("ts", "ts > now() + interval 1 day", "timestamp in the future"),
        ("ts", "ts < timestamptz '2015-01-01'", "timestamp too far in the past"),
        ("ts", f"_pdate is not null and (ts < {PART_LO} or ts >= {PART_HI})",
         "timestamp outside its file's date partition"),
        ("device_id", "device_id is null or node is null", "missing device or node"),
        ("chip", "chip is null", "missing chip"),
        ("power_limit_w", f"{_finite('power_limit_w')} or power_limit_w < 0", "power limit not a non-negative number"),
        ("power_w", _finite("power_w"), "power not a finite number"),
        ("power_w", "power_w < 0", "negative power"),
        ("power_w", f"power_w > {POWER_BOUND}", "power above physical bound for chip"),
        ("utilization_pct", f"{_finite('utilization_pct')} or utilization_pct < 0 or utilization_pct > 100",
         "utilization outside 0-100"),
        ("energy_counter_j", _finite("energy_counter_j"), "energy counter not a finite number"),
        ("energy_counter_j", "energy_counter_j < 0", "negative energy counter"),
        ("temperature_c", f"{_finite('temperature_c')} or temperature_c < -40 or temperature_c > 150",
         "implausible temperature"),
        ("memory_used_mib", f"{_finite('memory_used_mib')} or memory_used_mib < 0", "negative memory"),
        ("sm_clock_mhz", f"{_finite('sm_clock_mhz')} or sm_clock_mhz < 0 or sm_clock_mhz > 10000",
         "implausible clock"),
    ],
    "requests": [
        ("request_id", "request_id is null", "missing request id"),
        ("replica_id", "replica_id is null", "missing replica id"),
        ("prompt_tokens", "prompt_tokens is null", "missing token count"),
        ("prompt_tokens", "prompt_tokens < 0", "negative token count"),
        ("prompt_tokens", "prompt_tokens > 10000000", "implausible token count"),
        ("completion_tokens", "completion_tokens is null", "missing token count"),
        ("completion_tokens", "completion_tokens < 0", "negative token count"),
        ("completion_tokens", "completion_tokens > 10000000", "implausible token count"),
        ("arrival_ts", "arrival_ts is null or finish_ts is null", "missing timestamp"),
        ("finish_ts", "finish_ts < arrival_ts", "finish before arrival"),
        ("finish_ts", "finish_ts - arrival_ts > interval 1 day", "request lasts more than a day"),
        ("first_token_ts", "first_token_ts < arrival_ts or first_token_ts > finish_ts", "first token outside request"),
        ("arrival_ts", "finish_ts > now() + interval 1 day", "timestamp in the future"),
        ("arrival_ts", "arrival_ts < timestamptz '2015-01-01'", "timestamp too far in the past"),
        ("finish_ts", f"_pdate is not null and (finish_ts < {PART_LO} or arrival_ts >= {PART_HI})",
         "timestamp outside its file's date partition"),
        ("status", "status is not null and status not in ('ok', 'error', 'aborted')", "unknown status"),
    ],
    "replicas": [
        ("replica_id", "replica_id is null", "missing replica id"),
        ("device_ids", "device_ids is null or device_ids = ''", "replica without devices"),
        ("valid_from", "valid_from > now() + interval 1 day", "timestamp in the future"),
    ],
}

# key columns (a second row with the same key is a duplicate) and the row's day
KEYS = {
    "device_samples": (["device_id", "ts"], "cast(ts as date)"),
    "requests": (["request_id"], "cast(finish_ts as date)"),
    "replicas": (["replica_id", "valid_from"], "cast(valid_from as date)"),
}

# days a row's results fall on: (first, last) expressions
# the same over a file's good rows, as aggregates (first day, last day)
DAY_SPAN_AGG = {
    "device_samples": ("cast(min(ts) as date)", "cast(max(ts) as date)"),
    "requests": ("cast(least(min(arrival_ts), min(scheduled_ts)) as date)", "cast(max(finish_ts) as date)"),
    "replicas": ("cast(min(valid_from) as date)", "cast(max(valid_from) as date)"),
}

DAY_SPAN = {
    "device_samples": ("cast(ts as date)", "cast(ts as date)"),
    "requests": ("cast(least(arrival_ts, coalesce(scheduled_ts, arrival_ts)) as date)", "cast(finish_ts as date)"),
    "replicas": ("cast(valid_from as date)", "cast(valid_from as date)"),
}


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


#: storage format a new warehouse is written in: DuckDB 1.5's (storage version 68), which the newest
#: stock duckdb CLI on PyPI (duckdb-cli 1.5.6, reads 64-68) opens; DuckDB 2.0's own default (69) it
#: refuses. An existing file keeps the format it was created with.
STORAGE_COMPATIBILITY = "v1.5.0"


def connect(db_path: Path | str, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    config = {} if read_only or Path(db_path).exists() else {"storage_compatibility_version": STORAGE_COMPATIBILITY}
    con = duckdb.connect(str(db_path), read_only=read_only, config=config)
    try:
        con.execute("set TimeZone = 'UTC'")
    except duckdb.Error:
        pass
    if not read_only:
        ensure_schema(con)
    return con


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    con.execute((SQL_DIR / "raw.sql").read_text())
    con.execute("alter table raw.manifest add column if not exists fingerprint varchar")
    con.execute("create table if not exists raw.dirty_days (date date, marked_at timestamptz)")


def _batch_rows() -> int:
    try:
        return max(1, int(os.environ.get("TOKENWATT_LOAD_BATCH_ROWS", DEFAULT_BATCH_ROWS)))
    except ValueError:
        return DEFAULT_BATCH_ROWS


# ----------------------------------------------------------------------- reading and conforming
_TS_MIN = dt.datetime(1900, 1, 1, tzinfo=dt.timezone.utc)
_TS_MAX = dt.datetime(2200, 1, 1, tzinfo=dt.timezone.utc)
_TS_MIN_US = int(_TS_MIN.timestamp()) * 1_000_000
_TS_MAX_US = int(_TS_MAX.timestamp()) * 1_000_000


def _convert(v, typ: pa.DataType):
    """One value to ``typ``: (value, ok). None is fine; anything that does not fit is not."""
    if v is None:
        return None, True
    try:
        if pa.types.is_floating(typ):
            if isinstance(v, bool):
                return None, False
            if isinstance(v, (int, float)):
                return float(v), True
            if isinstance(v, str):
                return float(v.strip()), True
            if hasattr(v, "__float__") and not isinstance(v, (bytes, bytearray)):
                return float(v), True
            return None, False
        if pa.types.is_integer(typ):
            if isinstance(v, bool):
                return None, False
            if isinstance(v, float):
                if not math.isfinite(v) or v != int(v):
                    return None, False
                v = int(v)
            elif isinstance(v, str):
                s = v.strip()
                try:
                    v = int(s)
                except ValueError:
                    f = float(s)
                    if not math.isfinite(f) or f != int(f):
                        return None, False
                    v = int(f)
            elif not isinstance(v, int):
                return None, False
            bits = typ.bit_width
            if not -(1 << (bits - 1)) <= v < (1 << (bits - 1)):
                return None, False
            return v, True
        if pa.types.is_string(typ):
            if isinstance(v, str):
                return v, True
            if isinstance(v, (bytes, bytearray)):
                return bytes(v).decode("utf-8"), True
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                return str(v), True
            return None, False
        if pa.types.is_timestamp(typ):
            if isinstance(v, str):
                v = dt.datetime.fromisoformat(v.strip().replace("Z", "+00:00"))
            if isinstance(v, dt.datetime):
                if v.tzinfo is None:
                    v = v.replace(tzinfo=dt.timezone.utc)
                if not _TS_MIN <= v < _TS_MAX:
                    return None, False
                return v, True
            if isinstance(v, dt.date):
                return dt.datetime(v.year, v.month, v.day, tzinfo=dt.timezone.utc), True
            return None, False
    except (ValueError, TypeError, OverflowError, UnicodeDecodeError):
        return None, False
    return None, False


def _short(v) -> str:
    s = repr(v)
    return s if len(s) <= 80 else s[:77] + "..."


def conform(table: pa.Table, kind: str) -> tuple[pa.Table, list[str], list[str]]:
    """Align any table to the spool schema of ``kind``.

    Returns (table with the schema's columns plus ``_row`` and ``_pre``, missing required
    columns, notes). ``_pre`` holds 'field|reason|value' for rows refused while converting.
    """
    schema = KINDS[kind]
    n = table.num_rows
    names = table.column_names
    missing = sorted(REQUIRED[kind] - set(names))
    notes = []
    extra = sorted(set(names) - set(schema.names))
    if extra:
        notes.append(f"extra columns ignored: {extra}")
    if len(set(names)) != len(names):
        notes.append("repeated column names: the first of each is used")
    pre: list[str | None] = [None] * n
    cols = []
    for f in schema:
        if f.name not in names:
            cols.append(pa.nulls(n, f.type))
            continue
        col = table.column(names.index(f.name))
        if col.type == f.type:
            cols.append(col)
            continue
        cast = None
        try:
            if pa.types.is_timestamp(f.type) and not pa.types.is_timestamp(col.type):
                raise TypeError("numbers and strings are not instants: convert value by value")
            # timestamp units may lose sub-microsecond digits; everything else must cast exactly
            cast = col.cast(f.type, safe=not pa.types.is_timestamp(f.type))
            if pa.types.is_timestamp(f.type):
                mm = pc.min_max(cast.cast(pa.int64()))
                lo, hi = mm["min"].as_py(), mm["max"].as_py()
                if lo is not None and (lo < _TS_MIN_US or hi >= _TS_MAX_US):
                    cast = None  # instants out of range: go value by value
        except Exception:
            cast = None
        if cast is not None:
            cols.append(cast)
            continue
        notes.append(f"{f.name}: {col.type} converted value by value")
        try:
            values = col.to_pylist()
        except Exception:
            values = [None] * n
            for i in range(n):
                pre[i] = pre[i] or f"{f.name}|wrong type|{col.type}"
        out = []
        for i, v in enumerate(values):
            cv, ok = _convert(v, f.type)
            if not ok:
                pre[i] = pre[i] or f"{f.name}|wrong type|{_short(v)}"
            out.append(cv)
        cols.append(pa.array(out, type=f.type))
    arrays = [c.combine_chunks() if isinstance(c, pa.ChunkedArray) else c for c in cols]
    out = pa.Table.from_arrays(arrays, schema=schema)
    out = out.append_column("_row", pa.array(range(n), pa.int64()))
    out = out.append_column("_pre", pa.array(pre, pa.string()))
    return out, missing, notes


def _schema_is_exact(path: Path, kind: str) -> bool:
    try:
        got = pq.read_schema(path)
    except Exception:
        return False
    want = KINDS[kind]
    return got.names == want.names and all(g.type == w.type for g, w in zip(got, want))


# ------------------------------------------------------------------------------------ loading
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
    manifest = read_manifest(con)
    todo = classify(files, manifest, spool)
    pending_rel = {p.file.rel for p in todo}
    # touched-but-identical files: remember their new fingerprint so they are not hashed again
    touched = [f for f in files if f.rel not in pending_rel and f.rel in manifest
               and manifest[f.rel][0] != f.fingerprint]
    rep.files_skipped = len(files) - len(todo)
    if touched:
        con.execute("begin")
        for f in touched:
            con.execute("update raw.manifest set fingerprint = ? where file = ?", [f.fingerprint, f.rel])
        con.execute("commit")
    dups = [p for p in todo if p.state == "duplicate"]
    if dups:
        con.execute("begin")
        try:
            for p in dups:
                if p.file.rel in manifest:  # it had rows of its own before it became a copy
                    _mark_dirty_from_rows(con, p.file.kind, [p.file.rel], rep)
                    con.execute(f"delete from raw.{p.file.kind} where _file = ?", [p.file.rel])
                    con.execute("delete from raw.quarantine where file = ?", [p.file.rel])
                _record(con, p.file, p.sha256, 0, 0, "duplicate", f"byte-identical to {p.copy_of}")
                rep.files_duplicate += 1
            con.execute("commit")
        except Exception:
            _rollback(con)
            raise
    for kind in kinds:
        items = [p for p in todo if p.file.kind == kind and p.state != "duplicate"]
        batches, cur, cur_rows = [], [], 0
        for p in items:
            n = _footer_rows(spool / p.file.rel)
            if cur and cur_rows + n > batch_rows:
                batches.append(cur)
                cur, cur_rows = [], 0
            cur.append(p)
            cur_rows += n
        if cur:
            batches.append(cur)
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


def _record(con, f: SpoolFile, digest, rows, bad, status, detail=None) -> None:
    con.execute("delete from raw.manifest where file = ?", [f.rel])
    con.execute(
        "insert into raw.manifest (file, kind, date, node, size_bytes, sha256, rows, rows_quarantined, status, "
        "detail, loaded_at, fingerprint) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, now(), ?)",
        [f.rel, f.kind, f.date, f.node, f.size, digest, rows, bad, status, detail, f.fingerprint],
    )


def _mark_dirty_from_rows(con, kind: str, rels: list[str], rep: LoadReport) -> None:
    """Mark the days touched by the rows already loaded from ``rels`` dirty (before replacing them)."""
    if not rels:
        return
    first, last = DAY_SPAN_AGG[kind]
    con.execute("create or replace temp table _rels (f varchar)")
    con.executemany("insert into _rels values (?)", [[r] for r in rels])
    spans = con.execute(f"""
        select {first}, {last} from raw.{kind} where _file in (select f from _rels) group by _file
    """).fetchall()
    _mark_dirty(con, kind, spans, rep)


def _mark_dirty(con, kind: str, spans, rep: LoadReport) -> None:
    """Insert every day of the (first, last) day spans into raw.dirty_days."""
    days = set()
    latest = dt.datetime.now(dt.timezone.utc).date() + dt.timedelta(days=2)
    for a, b in spans:
        if not isinstance(a, dt.date) or not isinstance(b, dt.date):
            continue
        a, b = max(a, dt.date(2015, 1, 1)), min(b, latest)
        d = a
        while d <= b:
            days.add(d)
            d += dt.timedelta(days=1)
    if kind == "replicas" and days:  # a replica layout applies from its start to every later day
        first_day = min(days)
        for t in ("device_samples", "requests"):
            days |= {r[0] for r in con.execute(
                f"select distinct _date from raw.{t} where _date >= ?", [first_day]).fetchall()}
    if not days:
        return
    con.execute("create or replace temp table _days (d date)")
    con.executemany("insert into _days values (?)", [[d] for d in sorted(days)])
    con.execute("""insert into raw.dirty_days select d, now() from _days
                   where d not in (select date from raw.dirty_days)""")
    rep.dirty_dates |= {d.isoformat() for d in days}


def _load_batch(con, spool: Path, kind: str, batch: list, manifest: dict, rep: LoadReport) -> None:
    """Load ``batch`` in one transaction; on any failure retry its files one by one."""
    con.execute("begin")
    try:
        stats = _stage_and_insert(con, spool, kind, batch, manifest, rep, single=len(batch) == 1)
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
        con.execute("insert into raw.quarantine values (?, ?, -1, null, ?, null, now())",
                    [kind, p.file.rel, f"load failed: {_why(exc, spool)}"[:500]])
        _record(con, p.file, p.sha256, 0, 0, "error", _why(exc, spool)[:500])
        con.execute("commit")
        rep.files_failed += 1
        return
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


def _stage_and_insert(con, spool: Path, kind: str, batch: list, manifest: dict, rep: LoadReport,
                      single: bool) -> dict:
    """Inside an open transaction: read, validate and insert ``batch``; returns per-file status."""
    schema = KINDS[kind]
    cols = schema.names
    col_list = ", ".join(cols)
    target = f"raw.{kind}"
    result: dict[str, tuple[str, int, int]] = {}
    notes: dict[str, str] = {}
    # files replaced by new content: forget their rows first (their days become dirty)
    replaced = [p.file.rel for p in batch if p.file.rel in manifest]
    if replaced:
        _mark_dirty_from_rows(con, kind, replaced, rep)
        con.execute("create or replace temp table _rels (f varchar)")
        con.executemany("insert into _rels values (?)", [[r] for r in replaced])
        con.execute(f"delete from {target} where _file in (select f from _rels)")
        con.execute("delete from raw.quarantine where file in (select f from _rels)")
    con.execute(f"""create or replace temp table _n as
                    select {col_list}, _file, _row, null::date as _pdate, null::varchar as _pre
                    from {target} limit 0""")
    fast = []
    for p in batch:
        path = spool / p.file.rel
        # several well-formed files: DuckDB reads them in one go (if that fails, the caller retries
        # file by file); a lone or odd file goes through pyarrow, which reports what is wrong
        if not single and _schema_is_exact(path, kind):
            fast.append(p)
            continue
        try:
            table = pq.read_table(path)
        except Exception as exc:  # truncated or corrupt: record it, keep going
            con.execute("insert into raw.quarantine values (?, ?, -1, null, ?, null, now())",
                        [kind, p.file.rel, f"unreadable file: {_why(exc, spool)}"[:500]])
            _record(con, p.file, p.sha256, 0, 0, "unreadable", _why(exc, spool)[:500])
            result[p.file.rel] = ("unreadable", 0, 0)
            continue
        conformed, missing, file_notes = conform(table, kind)
        if missing:
            n = conformed.num_rows
            con.execute("insert into raw.quarantine values (?, ?, -1, ?, ?, null, now())",
                        [kind, p.file.rel, ",".join(missing), f"file lacks required column(s): {', '.join(missing)}"])
            _record(con, p.file, p.sha256, 0, n, "rejected", f"missing columns {missing}")
            result[p.file.rel] = ("rejected", 0, n)
            continue
        notes[p.file.rel] = "; ".join(file_notes) or None
        con.register("_slow", conformed)
        try:
            con.execute(f"insert into _n select {col_list}, ?, _row, ?::date, _pre from _slow",
                        [p.file.rel, p.file.date])
        finally:
            con.unregister("_slow")
    if fast:
        _insert_fast(con, spool, fast, col_list)
    staged = [p for p in batch if p.file.rel not in result]
    if staged:
        counts, spans = _validate_and_insert(con, kind, col_list)
        _mark_dirty(con, kind, spans, rep)
        for p in staged:
            good, bad = counts.get(p.file.rel, (0, 0))
            _record(con, p.file, p.sha256, good, bad, "loaded", notes.get(p.file.rel))
            result[p.file.rel] = ("loaded", good, bad)
    return result


def _insert_fast(con, spool: Path, items: list, col_list: str) -> None:
    prefix = str(spool.resolve()) + "/"
    paths = [str((spool / p.file.rel).resolve()) for p in items]
    con.execute("create or replace temp table _fdates (f varchar, d date)")
    con.executemany("insert into _fdates values (?, ?)", [[p.file.rel, p.file.date] for p in items])
    con.execute(f"""
        insert into _n
        select {col_list}, r._f, r.file_row_number, d.d, null
        from (select *, substr(filename, {len(prefix) + 1}) as _f
              from read_parquet(?, hive_partitioning = false, file_row_number = true, filename = true,
                                union_by_name = false)) r
        left join _fdates d on d.f = r._f
    """, [paths])


def _sql_str(s: str) -> str:
    return s.replace("'", "''")


def _validate_and_insert(con, kind: str, col_list: str) -> dict:
    """Check the staged rows (_n) and insert the good ones into raw, the rest into quarantine.

    A row's reason is the first of: a conversion problem, a failed check, a duplicate key. Only
    rows that pass the checks take part in duplicate detection (a refused row never hides a good
    one); among duplicates the first by (file, row) wins, rows already in raw win over new ones.
    """
    checks = CHECKS[kind]
    reason_sql = "case " + " ".join(
        f"when {cond} then '{_sql_str(fld)}|{_sql_str(why)}|' || coalesce(cast({fld} as varchar), 'null')"
        for fld, cond, why in checks) + " else null end"
    keys, day_expr = KEYS[kind]
    key_cols = ", ".join(keys)

    def on(a, b):
        return " and ".join(f"{a}.{k} = {b}.{k}" for k in keys)

    part = ", ".join(f"o.{k}" for k in keys)
    key_val = " || ' ' || ".join(f"coalesce(cast(n.{k} as varchar), 'null')" for k in keys)
    if kind == "device_samples":  # the key holds the day: look only at those days' rows
        existing_filter = (f"where r._date between (select min({day_expr}) from ok) "
                           f"and (select max({day_expr}) from ok)")
    else:
        existing_filter = ""
    con.execute(f"""
        create or replace temp table _bad as
        with checked as (
            select {key_cols}, _file, _row, coalesce(_pre, {reason_sql}) as _chk from _n
        ),
        ok as (
            select {key_cols}, _file, _row from checked where _chk is null
        ),
        dupkeys as (
            select {key_cols} from ok group by all having count(*) > 1
        ),
        d as (
            select {part}, o._file, o._row,
                   row_number() over (partition by {part} order by o._file, o._row) as _nth,
                   first(o._file) over (partition by {part} order by o._file, o._row) as _first_file
            from ok o semi join dupkeys k on {on('o', 'k')}
        ),
        existing as (
            select distinct {', '.join('r.' + k for k in keys)} from raw.{kind} r
            semi join ok k on {on('r', 'k')}
            {existing_filter}
        ),
        reasons as (
            select n._file, n._row,
                   coalesce(n._chk,
                            case when d._nth > 1 and d._first_file = n._file then 'key|duplicate within file|' || {key_val}
                                 when d._nth > 1 then 'key|duplicate of a row in another file|' || {key_val} end,
                            case when e.{keys[0]} is not null then 'key|duplicate of a row already loaded|' || {key_val} end
                   ) as _reason
            from checked n
            left join d on {on('d', 'n')} and d._file = n._file and d._row = n._row
            left join existing e on {on('e', 'n')}
        )
        select * from reasons where _reason is not null
    """)
    con.execute(f"""
        insert into raw.{kind}
        select {col_list}, _file, _row, {day_expr}, now() from _n anti join _bad using (_file, _row)
    """)
    con.execute(f"""
        insert into raw.quarantine
        select '{kind}', _file, _row, split_part(_reason, '|', 1), split_part(_reason, '|', 2),
               nullif(array_to_string(string_split(_reason, '|')[3:], '|'), ''), now()
        from _bad
    """)
    first, last = DAY_SPAN_AGG[kind]
    counts = {}
    spans = []
    for f, n, a, b in con.execute(f"""
        select _file, count(*), {first}, {last} from _n anti join _bad using (_file, _row) group by _file
    """).fetchall():
        counts[f] = [int(n), 0]
        spans.append((a, b))
    for f, n in con.execute("select _file, count(*) from _bad group by _file").fetchall():
        counts.setdefault(f, [0, 0])[1] = int(n)
    return {f: tuple(v) for f, v in counts.items()}, spans


def clear_dirty_days(con: duckdb.DuckDBPyConnection, first: str, last: str) -> int:
    """Forget the dirty marks of days [first, last] once their downstream results are rebuilt."""
    n = con.execute("select count(*) from raw.dirty_days where date between ? and ?", [first, last]).fetchone()[0]
    con.execute("delete from raw.dirty_days where date between ? and ?", [first, last])
    return int(n)


@dataclass(frozen=True)
class TableChecksum:
    """Order-independent content checksum of one table.

    ``exact`` sums the row hashes of every non-double column, so any change to a key, a count, a
    label or a timestamp shows. Doubles cannot be hashed honestly: a parallel floating-point sum may
    differ in its last bit between two runs, and rounding to any precision still flips on a value
    that sits at a rounding boundary. So each double column is summarised by sums that two
    checksums must agree on to ``rel``: its plain sum, and the sum of sign(x)·ln(1+|x|) weighted by
    a per-row factor drawn from the row's exact hash. The logarithm keeps a small value's change
    visible next to large ones; the weight catches a value moved to another row.
    """

    rows: int
    exact: int
    doubles: tuple[tuple[str, float, float], ...]
    rel: float = 1e-9

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TableChecksum):
            return NotImplemented
        if (self.rows, self.exact) != (other.rows, other.exact):
            return False
        if [d[0] for d in self.doubles] != [d[0] for d in other.doubles]:
            return False
        tol = max(self.rel, other.rel)
        return all((math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=tol, abs_tol=1e-9)
                   for (_, *xs), (_, *ys) in zip(self.doubles, other.doubles) for a, b in zip(xs, ys))

    __hash__ = None  # equality is approximate, so it cannot be hashed


def table_checksums(con: duckdb.DuckDBPyConnection, tables: list[str]) -> dict[str, TableChecksum]:
    """Order-independent content checksum per table (see :class:`TableChecksum`).

    Load timestamps and file-system fingerprints are left out.
    """
    out = {}
    for t in tables:
        exact, doubles = [], []
        for name, typ, *_ in con.execute(f"describe {t}").fetchall():
            if name in ("_loaded_at", "loaded_at", "fingerprint", "marked_at"):
                continue
            (doubles if typ in ("DOUBLE", "FLOAT", "REAL") else exact).append(name)
        row_hash = "hash(" + ", ".join(exact) + ")" if exact else "0::ubigint"
        weight = f"(({row_hash}) % 1009 + 1)::double"
        sums = [f"coalesce(sum({d}), 0), coalesce(sum(sign({d}) * ln(1 + abs({d})) * {weight}), 0)"
                for d in doubles]
        row = con.execute(f"select count(*), coalesce(sum(({row_hash})::hugeint), 0)"
                          + "".join(", " + s for s in sums) + f" from {t}").fetchone()
        out[t] = TableChecksum(
            rows=int(row[0]), exact=int(row[1]),
            doubles=tuple((d, float(row[2 + 2 * k]), float(row[3 + 2 * k])) for k, d in enumerate(doubles)))
    return out
