"""Load the Parquet spool into DuckDB schema ``raw``: exactly once, nothing lost.

* A manifest (``raw.manifest``) remembers every file by path, size and SHA-256. A file seen
  before is skipped; a byte-identical copy under another name is recorded as a duplicate and
  skipped; a file whose content changed replaces its own earlier rows.
* Each file loads in one transaction (its rows, its quarantine rows and its manifest row), so a
  load killed at any point leaves the warehouse as it was before that file, and a rerun converges.
* Rows are validated in SQL; refused rows go to ``raw.quarantine`` with file, row, field and
  reason; good rows still load. A row whose key (device and timestamp, or request id) is already
  in the warehouse is quarantined as a duplicate. An unreadable file (truncated, corrupt) is
  recorded with its reason and the load goes on.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from collectors.schema import DEVICE_SAMPLES, KINDS, REPLICAS, REQUESTS
from collectors.spool import list_files

SQL_DIR = Path(__file__).parent / "sql"

REQUIRED = {
    "device_samples": {"ts", "device_id", "node", "chip"},
    "requests": {"request_id", "replica_id", "arrival_ts", "finish_ts", "prompt_tokens", "completion_tokens"},
    "replicas": {"replica_id", "node", "device_ids"},
}

# SQL expressions giving (field, reason) for the first problem of a row, or NULL when it is good
CHECKS = {
    "device_samples": [
        ("ts", "ts is null", "missing timestamp"),
        ("ts", "ts > now() + interval 1 day", "timestamp in the future"),
        ("ts", "ts < timestamptz '2015-01-01'", "timestamp too far in the past"),
        ("device_id", "device_id is null or node is null", "missing device or node"),
        ("power_w", "power_w < 0", "negative power"),
        ("power_w", "power_w > 3 * coalesce(power_limit_w, 1000)", "power above physical bound for chip"),
        ("power_w", "isnan(power_w) or isinf(power_w)", "power not a number"),
        ("utilization_pct", "utilization_pct < 0 or utilization_pct > 100", "utilization outside 0-100"),
        ("energy_counter_j", "energy_counter_j < 0", "negative energy counter"),
        ("temperature_c", "temperature_c < -40 or temperature_c > 150", "implausible temperature"),
        ("memory_used_mib", "memory_used_mib < 0", "negative memory"),
    ],
    "requests": [
        ("request_id", "request_id is null", "missing request id"),
        ("replica_id", "replica_id is null", "missing replica id"),
        ("prompt_tokens", "prompt_tokens is null or prompt_tokens < 0", "negative token count"),
        ("completion_tokens", "completion_tokens is null or completion_tokens < 0", "negative token count"),
        ("arrival_ts", "arrival_ts is null or finish_ts is null", "missing timestamp"),
        ("finish_ts", "finish_ts < arrival_ts", "finish before arrival"),
        ("first_token_ts", "first_token_ts < arrival_ts or first_token_ts > finish_ts", "first token outside request"),
        ("arrival_ts", "finish_ts > now() + interval 1 day", "timestamp in the future"),
        ("arrival_ts", "arrival_ts < timestamptz '2015-01-01'", "timestamp too far in the past"),
        ("status", "status is not null and status not in ('ok', 'error', 'aborted')", "unknown status"),
    ],
    "replicas": [
        ("replica_id", "replica_id is null", "missing replica id"),
        ("device_ids", "device_ids is null or device_ids = ''", "replica without devices"),
    ],
}

KEYS = {
    "device_samples": (["device_id", "ts"], "cast(ts as date)"),
    "requests": (["request_id"], "cast(finish_ts as date)"),
    "replicas": (["replica_id", "valid_from"], "cast(valid_from as date)"),
}


@dataclass
class LoadReport:
    files_seen: int = 0
    files_loaded: int = 0
    files_skipped: int = 0
    files_duplicate: int = 0
    files_unreadable: int = 0
    files_replaced: int = 0
    rows_loaded: dict = field(default_factory=dict)
    rows_quarantined: dict = field(default_factory=dict)
    loaded_dates: set = field(default_factory=set)
    elapsed_s: float = 0.0

    def as_dict(self) -> dict:
        d = dict(self.__dict__)
        d["loaded_dates"] = sorted(self.loaded_dates)
        return d


def connect(db_path: Path | str, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(db_path), read_only=read_only)
    if not read_only:
        ensure_schema(con)
    return con


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    con.execute((SQL_DIR / "raw.sql").read_text())


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _partition_values(rel: str) -> tuple[str | None, str | None]:
    date = node = None
    for part in rel.split("/"):
        if part.startswith("date="):
            date = part[5:]
        elif part.startswith("node="):
            node = part[5:]
    return date, node


def _conform(table: pa.Table, kind: str) -> tuple[pa.Table, list[str], list[str]]:
    """Align a file's columns to the spool schema: missing optional columns become nulls."""
    schema = KINDS[kind]
    names = set(table.column_names)
    missing_required = sorted(REQUIRED[kind] - names)
    extra = sorted(names - set(schema.names))
    cols = []
    for f in schema:
        if f.name in names:
            col = table[f.name]
            try:
                col = col.cast(f.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                col = pa.nulls(table.num_rows, f.type)
                missing_required.append(f"{f.name} (wrong type)") if f.name in REQUIRED[kind] else None
            cols.append(col)
        else:
            cols.append(pa.nulls(table.num_rows, f.type))
    return pa.Table.from_arrays(cols, schema=schema), missing_required, extra


def load_spool(con: duckdb.DuckDBPyConnection, spool: Path | str, kinds=("replicas", "device_samples", "requests"),
               progress: bool = False) -> LoadReport:
    """Load every new or changed file of the spool. Safe to rerun; safe to kill."""
    spool = Path(spool)
    rep = LoadReport()
    t0 = time.perf_counter()
    known = {r[0]: (r[1], r[2]) for r in con.execute("select file, sha256, status from raw.manifest").fetchall()}
    hashes = {}
    for r in con.execute("select sha256, file from raw.manifest where status = 'loaded'").fetchall():
        hashes.setdefault(r[0], r[1])
    for kind in kinds:
        files = list_files(spool, kind)
        for i, path in enumerate(files):
            rep.files_seen += 1
            rel = str(path.relative_to(spool))
            try:
                size = path.stat().st_size
                digest = _sha256(path)
            except FileNotFoundError:
                continue  # removed between listing and reading
            prev = known.get(rel)
            if prev and prev[0] == digest:
                rep.files_skipped += 1
                continue
            if digest in hashes and hashes[digest] != rel:
                _record(con, rel, kind, size, digest, 0, 0, "duplicate", f"byte-identical to {hashes[digest]}")
                rep.files_duplicate += 1
                continue
            n_ok, n_bad, status = _load_file(con, path, rel, kind, size, digest, replace=prev is not None)
            if status == "unreadable":
                rep.files_unreadable += 1
            else:
                rep.files_loaded += 1
                hashes.setdefault(digest, rel)
                if prev is not None:
                    rep.files_replaced += 1
                date, _ = _partition_values(rel)
                if date:
                    rep.loaded_dates.add(date)
            rep.rows_loaded[kind] = rep.rows_loaded.get(kind, 0) + n_ok
            rep.rows_quarantined[kind] = rep.rows_quarantined.get(kind, 0) + n_bad
            if progress and (i + 1) % 20 == 0:
                print(f"  load: {kind} {i + 1}/{len(files)} files", file=sys.stderr, flush=True)
    rep.elapsed_s = time.perf_counter() - t0
    return rep


def _record(con, rel, kind, size, digest, rows, bad, status, detail=None) -> None:
    date, node = _partition_values(rel)
    con.execute("delete from raw.manifest where file = ?", [rel])
    con.execute(
        "insert into raw.manifest values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, now())",
        [rel, kind, date, node, size, digest, rows, bad, status, detail],
    )


def _load_file(con, path: Path, rel: str, kind: str, size: int, digest: str, replace: bool) -> tuple[int, int, str]:
    try:
        table = pq.read_table(path)
    except Exception as exc:  # truncated or corrupt Parquet: record it, keep going
        con.execute("begin")
        try:
            con.execute("delete from raw.quarantine where file = ?", [rel])
            con.execute("insert into raw.quarantine values (?, ?, -1, null, ?, null, now())",
                        [kind, rel, f"unreadable file: {type(exc).__name__}: {exc}"[:500]])
            _record(con, rel, kind, size, digest, 0, 0, "unreadable", str(exc)[:500])
            con.execute("commit")
        except Exception:
            con.execute("rollback")
            raise
        return 0, 0, "unreadable"
    conformed, missing, extra = _conform(table, kind)
    checks = CHECKS[kind]
    reason_sql = "case " + " ".join(f"when {cond} then '{fld}|{why}'" for fld, cond, why in checks) + " else null end"
    keys, day_expr = KEYS[kind]
    target = f"raw.{kind}"
    cols = ", ".join(KINDS[kind].names)
    con.execute("begin")
    try:
        con.register("_incoming", conformed)
        if replace:
            con.execute(f"delete from {target} where _file = ?", [rel])
            con.execute("delete from raw.quarantine where file = ?", [rel])
        if missing:
            n = conformed.num_rows
            con.execute(
                "insert into raw.quarantine select ?, ?, -1, ?, ?, null, now()",
                [kind, rel, ",".join(missing), f"file lacks required column(s): {', '.join(missing)}"],
            )
            _record(con, rel, kind, size, digest, 0, n, "rejected", f"missing columns {missing}")
            con.execute("commit")
            con.unregister("_incoming")
            return 0, n, "rejected"
        key_cols = ", ".join(keys)
        key_join = " and ".join(f"i.{k} = t.{k}" for k in keys)
        lo, hi = con.execute(f"select min({day_expr}), max({day_expr}) from _incoming").fetchone()
        # one pass: row checks, duplicates within the file, duplicates of rows already loaded
        con.execute(f"""
            create or replace temp table _checked as
            with numbered as (
                select *, row_number() over () - 1 as _row from _incoming
            ),
            checked as (
                select *, {reason_sql} as _check,
                       row_number() over (partition by {key_cols} order by _row) as _nth
                from numbered
            ),
            existing as (
                select distinct {key_cols} from {target}
                where _date between ? and ?
            )
            select i.* exclude (_check, _nth, _hit),
                   coalesce(i._check,
                            case when i._nth > 1 then 'key|duplicate within file' end,
                            case when i._hit then 'key|duplicate of a row already loaded' end) as _reason
            from (
                select c.*, t.{keys[0]} is not null as _hit
                from checked c left join existing t on {key_join.replace('i.', 'c.')}
            ) as i
        """, [lo, hi])
        good = con.execute(f"""
            insert into {target} select {cols}, ? as _file, _row, {day_expr} as _date, now() as _loaded_at
            from _checked where _reason is null
        """, [rel]).fetchone()[0]
        bad = con.execute(f"""
            insert into raw.quarantine
            select '{kind}', ?, _row, split_part(_reason, '|', 1), split_part(_reason, '|', 2),
                   null, now()
            from _checked where _reason is not null
        """, [rel]).fetchone()[0]
        _record(con, rel, kind, size, digest, good, bad, "loaded",
                f"extra columns ignored: {extra}" if extra else None)
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise
    finally:
        try:
            con.unregister("_incoming")
        except Exception:
            pass
    return int(good), int(bad), "loaded"


def table_checksums(con: duckdb.DuckDBPyConnection, tables: list[str]) -> dict[str, tuple]:
    """Order-independent content checksum per table: row count and a sum of row hashes.

    Load timestamps are left out; doubles are compared at single precision so that the last-bit
    differences of parallel floating-point sums do not count as a change.
    """
    out = {}
    for t in tables:
        cols = []
        for name, typ, *_ in con.execute(f"describe {t}").fetchall():
            if name in ("_loaded_at", "loaded_at"):
                continue
            cols.append(f"cast({name} as float)" if typ == "DOUBLE" else name)
        expr = "hash(" + ", ".join(cols) + ")"
        out[t] = tuple(con.execute(f"select count(*), coalesce(sum({expr}::hugeint), 0) from {t}").fetchone())
    return out
