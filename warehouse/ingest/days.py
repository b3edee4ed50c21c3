"""Which UTC days a load changes: from Parquet footers before loading, from rows while loading.

* :func:`file_dates` reads a Parquet footer (never the rows) and returns the UTC days the file's
  rows touch, from the column statistics of its timestamps, bounded around its ``date=``
  partition (rows far outside their partition are quarantined by the loader) and to the loader's
  date bounds (:func:`warehouse.ingest.scan.date_bounds`);
* :func:`pending_dates` = days with new or changed files, plus days marked dirty in the
  warehouse (``raw.dirty_days``) (loaded but not yet carried through attribution and dbt);
* :func:`mark_dirty` / :func:`mark_dirty_from_rows` write those marks inside a load's
  transaction, :func:`clear_dirty_days` forgets them once the days are rebuilt.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path

from warehouse.ingest.manifest import Pending, pending
from warehouse.ingest.rules import DAY_SPAN_AGG
from warehouse.ingest.scan import SpoolFile, date_bounds, spool_dates

#: a row may sit this many days before or after its file's ``date=`` partition
PARTITION_SLACK_DAYS = 1

#: timestamp columns whose footer statistics give a file's span, per kind: (earliest, latest)
SPAN_COLUMNS = {
    "device_samples": (("ts",), ("ts",)),
    "requests": (("arrival_ts", "scheduled_ts"), ("finish_ts",)),
    "replicas": (("valid_from",), ("valid_from",)),
    "server_counters": (("ts",), ("ts",)),
    "host_samples": (("ts",), ("ts",)),
}
#: kinds whose timestamp closes the interval a row measured: their day is that of ts - 1 us
END_STAMPED = {"host_samples"}
_TICK = dt.timedelta(microseconds=1)


def _to_date(v) -> dt.date | None:
    if isinstance(v, dt.datetime):
        if v.tzinfo is not None:
            v = v.astimezone(dt.timezone.utc)
        return v.date()
    if isinstance(v, dt.date):
        return v
    if isinstance(v, (int, float)):  # raw int64 microseconds
        try:
            return (dt.datetime(1970, 1, 1) + dt.timedelta(microseconds=int(v))).date()
        except (OverflowError, ValueError):
            return None
    return None


def footer_span(path: Path | str, kind: str) -> tuple[dt.date, dt.date] | None:
    """(first, last) UTC day of a file's rows from its Parquet statistics, or None if unknown."""
    import pyarrow.parquet as pq

    try:
        md = pq.ParquetFile(path).metadata
    except Exception:
        return None
    first_cols, last_cols = SPAN_COLUMNS.get(kind, ((), ()))
    names = [md.schema.column(i).name for i in range(md.num_columns)]
    lo = hi = None
    for rg in range(md.num_row_groups):
        g = md.row_group(rg)
        for cols, which in ((first_cols, "min"), (last_cols, "max")):
            for c in (c for c in cols if c in names):
                st = g.column(names.index(c)).statistics
                if st is None or not st.has_min_max:
                    continue
                try:
                    v = getattr(st, which)
                    if kind in END_STAMPED:
                        v = v - _TICK if isinstance(v, dt.datetime) else v - 1 if isinstance(v, int) else v
                    d = _to_date(v)
                except Exception:
                    d = None
                if d is None:
                    continue
                if which == "min":
                    lo = d if lo is None else min(lo, d)
                else:
                    hi = d if hi is None else max(hi, d)
    if lo is None and hi is None:
        return None
    lo = lo or hi
    hi = hi or lo
    return (min(lo, hi), max(lo, hi))


def _days(lo: dt.date, hi: dt.date) -> set[dt.date]:
    return {lo + dt.timedelta(days=k) for k in range(max(0, (hi - lo).days + 1))}


def file_dates(spool: Path | str, f: SpoolFile, today: dt.date | None = None) -> set[str]:
    """UTC days whose results a file can change, from its partition and its footer statistics.

    Device samples: the days of their timestamps. Requests: from the earliest arrival or
    scheduling day to the latest finish day (a request's energy falls on every day it ran, and
    the marts key requests by arrival day). Both are bounded to the file's partition date +- 2
    days (rows further away are quarantined by the loader). Replicas: their ``valid_from`` day
    (callers extend it to every later day). A file without statistics or unreadable counts for
    its partition date (and the day before, for requests). A symbolic link changes nothing.
    """
    if f.link:
        return set()
    first, last = date_bounds(today)
    part = dt.date.fromisoformat(f.date) if f.date else None
    span = footer_span(Path(spool) / f.rel, f.kind)
    if span is None:
        if part is None:
            return set()
        span = (part - dt.timedelta(days=1), part) if f.kind == "requests" else (part, part)
    lo, hi = span
    if part is not None:
        slack = dt.timedelta(days=PARTITION_SLACK_DAYS + 1)
        lo, hi = max(lo, part - slack), min(hi, part + slack)
    out = _days(max(lo, first), min(hi, last))
    if part is not None and first <= part <= last:
        out.add(part)
    return {d.isoformat() for d in out}


def dirty_dates(con) -> set[str]:
    try:
        return {str(r[0]) for r in con.execute("select distinct date from raw.dirty_days").fetchall()}
    except Exception:
        return set()


def pending_dates(con, spool: Path | str, today: dt.date | None = None, files: list[Pending] | None = None) -> list[str]:
    """Days whose downstream results are out of date: days touched by new, changed or retried
    spool files (duplicates change nothing), plus days the warehouse marked dirty. Reads footers
    only, loads nothing. ``files``: the result of :func:`pending`, if the caller has it."""
    dates: set[str] = set()
    replica_days = []
    for p in (files if files is not None else pending(con, spool)):
        if p.state == "duplicate":
            continue
        ds = file_dates(spool, p.file, today)
        if p.file.kind == "replicas":
            replica_days += sorted(ds)[:1]
        else:
            dates |= ds
    if con is not None:
        dates |= dirty_dates(con)
    if replica_days:  # a new replica layout changes every day from its start on
        first = min(replica_days)
        dates |= {d for d in spool_dates(spool, today=today) if d >= first}
        dates.add(first)
    return sorted(dates)


def mark_dirty(con, kind: str, spans) -> set[str]:
    """Insert every day of the (first, last) day spans into raw.dirty_days; returns the ISO days."""
    days: set[dt.date] = set()
    first, last = date_bounds()
    for a, b in spans:
        if isinstance(a, dt.date) and isinstance(b, dt.date):
            days |= _days(max(a, first), min(b, last + dt.timedelta(days=1)))
    if kind == "replicas" and days:  # a replica layout applies from its start to every later day
        start = min(days)
        for t in ("device_samples", "requests"):
            days |= {r[0] for r in con.execute(
                f"select distinct _date from raw.{t} where _date >= ?", [start]).fetchall()}
    if not days:
        return set()
    con.execute("create or replace temp table _days (d date)")
    con.executemany("insert into _days values (?)", [[d] for d in sorted(days)])
    con.execute("""insert into raw.dirty_days select d, now() from _days
                   where d not in (select date from raw.dirty_days)""")
    return {d.isoformat() for d in days}


def mark_dirty_from_rows(con, kind: str, rels: list[str]) -> set[str]:
    """Mark the days touched by the rows already loaded from ``rels`` dirty (before replacing them)."""
    if not rels:
        return set()
    first, last = DAY_SPAN_AGG[kind]
    spans = con.execute(f"""
        select {first}, {last} from raw.{kind} where _file in (select unnest(?::varchar[])) group by _file
    """, [list(rels)]).fetchall()
    return mark_dirty(con, kind, spans)


def clear_dirty_days(con, first: str, last: str) -> int:
    """Forget the dirty marks of days [first, last] once their downstream results are rebuilt."""
    n = con.execute("select count(*) from raw.dirty_days where date between ? and ?", [first, last]).fetchone()[0]
    con.execute("delete from raw.dirty_days where date between ? and ?", [first, last])
    return int(n)
