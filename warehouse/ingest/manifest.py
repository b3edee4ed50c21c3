"""What the spool holds that the warehouse has not processed yet, and the ingest checks.

Pure functions (no Dagster here), shared by the loader, the Dagster sensor and ``tokenwatt run``:

* :func:`scan_spool` lists whole spool files with a cheap fingerprint (size, mtime, inode);
* :func:`classify` compares a listing with the manifest (``raw.manifest``): a file is *new*,
  *changed* (its bytes differ from what was loaded), *duplicate* (byte-identical to another loaded
  file), *retry* (its last load failed) or *unchanged*. Only files whose fingerprint moved are
  hashed, so a sensor tick over an unchanged spool reads no data;
* :func:`file_dates` reads a Parquet footer (never the rows) and returns the UTC days the file's
  rows touch, from the column statistics of its timestamps, bounded around its ``date=``
  partition (rows far outside their partition are quarantined by the loader);
* :func:`pending_dates` = days with new or changed files, plus days marked dirty in the
  warehouse (``raw.dirty_days``) (loaded but not yet carried through attribution and dbt);
* :func:`date_ranges` and :func:`dbt_window_vars` turn days into run windows and dbt ``--vars``;
* the check functions (:func:`freshness_by_node`, :func:`completeness_by_device_day`,
  :func:`quarantine_rate`) compute what the Dagster asset checks report.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

KINDS = ("replicas", "device_samples", "requests")
#: rows with timestamps before this are refused by the loader (and never widen a window)
FAR_PAST = dt.date(2015, 1, 1)
#: a row may sit this many days before or after its file's ``date=`` partition
PARTITION_SLACK_DAYS = 1

#: timestamp columns whose footer statistics give a file's span, per kind: (earliest, latest)
SPAN_COLUMNS = {
    "device_samples": (("ts",), ("ts",)),
    "requests": (("arrival_ts", "scheduled_ts"), ("finish_ts",)),
    "replicas": (("valid_from",), ("valid_from",)),
}


@dataclass(frozen=True)
class SpoolFile:
    rel: str            # path relative to the spool, with '/' separators
    kind: str
    date: str | None    # the date= partition, when it parses as a date
    node: str | None
    size: int
    fingerprint: str    # size:mtime_ns:inode; a new fingerprint means "hash me again"
    mtime_ns: int = 0


@dataclass(frozen=True)
class Pending:
    file: SpoolFile
    state: str          # new | changed | duplicate | retry
    sha256: str | None = None
    copy_of: str | None = None  # for duplicates: the file whose bytes were loaded


def partition_values(rel: str) -> tuple[str | None, str | None]:
    """(date, node) from a hive path; the date only if it is a valid ISO date."""
    date = node = None
    for part in rel.split("/"):
        if part.startswith("date="):
            date = part[5:]
        elif part.startswith("node="):
            node = part[5:]
    if date is not None:
        try:
            dt.date.fromisoformat(date)
        except ValueError:
            date = None
    return date, node


def fingerprint(st: os.stat_result) -> str:
    return f"{st.st_size}:{st.st_mtime_ns}:{st.st_ino}"


def scan_spool(spool: Path | str, kinds=KINDS, dates: tuple[str, str] | None = None) -> list[SpoolFile]:
    """Whole ``*.parquet`` files of ``kinds`` (hidden temporary files excluded), sorted by path.

    With ``dates=(lo, hi)`` only files whose ``date=`` partition is inside the window, and files
    without a usable partition date, are listed.
    """
    spool = Path(spool)
    out = []
    for kind in kinds:
        root = spool / kind
        if not root.is_dir():
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in filenames:
                if name.startswith(".") or not name.endswith(".parquet"):
                    continue
                path = Path(dirpath) / name
                rel = path.relative_to(spool).as_posix()
                date, node = partition_values(rel)
                if dates is not None and date is not None and not (dates[0] <= date <= dates[1]):
                    continue
                try:
                    st = path.stat()
                except FileNotFoundError:
                    continue
                out.append(SpoolFile(rel, kind, date, node, st.st_size, fingerprint(st), st.st_mtime_ns))
    out.sort(key=lambda f: (KINDS.index(f.kind) if f.kind in KINDS else 99, f.rel))
    return out


def sha256_file(path: Path | str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_manifest(con) -> dict[str, tuple]:
    """file -> (fingerprint, sha256, status) from ``raw.manifest`` (empty if there is none yet)."""
    try:
        rows = con.execute("select file, fingerprint, sha256, status from raw.manifest").fetchall()
    except Exception:  # no warehouse or an old manifest without fingerprints
        try:
            rows = [(f, None, s, st) for f, s, st in
                    con.execute("select file, sha256, status from raw.manifest").fetchall()]
        except Exception:
            return {}
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


def classify(files: list[SpoolFile], manifest: dict[str, tuple], spool: Path | str,
             hash_fn=sha256_file) -> list[Pending]:
    """Which listed files need loading. Hashes only files whose fingerprint is not the manifest's.

    Byte-identical files are loaded once: a file whose bytes were already loaded under another
    name, or that shares its bytes with an earlier delivery in this listing (older mtime, then
    path order), is a duplicate. A duplicate whose original has since changed (its bytes are no
    longer loaded anywhere) is loaded in its own right.
    """
    spool = Path(spool)
    loaded = {}
    for rel, (_fp, sha, status) in manifest.items():
        if status == "loaded" and sha:
            loaded.setdefault(sha, rel)
    candidates = []
    for f in files:
        prev = manifest.get(f.rel)
        orphan = prev is not None and prev[2] == "duplicate" and prev[1] not in loaded
        if prev is not None and prev[0] == f.fingerprint and prev[2] != "error" and not orphan:
            continue
        try:
            digest = hash_fn(spool / f.rel)
        except FileNotFoundError:
            continue
        if prev is not None and prev[1] == digest and prev[2] != "error" and not orphan:
            continue  # touched, not changed (the loader refreshes its fingerprint)
        candidates.append((f, prev, digest))
    first_delivery = {}
    for f, _prev, digest in sorted(candidates, key=lambda c: (c[0].mtime_ns, c[0].rel)):
        if digest not in loaded:
            first_delivery.setdefault(digest, f.rel)
    out = []
    for f, prev, digest in candidates:
        original = loaded.get(digest) or first_delivery.get(digest)
        if original is not None and original != f.rel:
            out.append(Pending(f, "duplicate", digest, original))
        elif prev is not None and prev[2] == "error":
            out.append(Pending(f, "retry", digest))
        elif prev is not None:
            out.append(Pending(f, "changed", digest))
        else:
            out.append(Pending(f, "new", digest))
    return out


def _to_date(v) -> dt.date | None:
    if v is None:
        return None
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
            for c in cols:
                if c not in names:
                    continue
                st = g.column(names.index(c)).statistics
                if st is None or not st.has_min_max:
                    continue
                try:
                    d = _to_date(getattr(st, which))
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


def file_dates(spool: Path | str, f: SpoolFile, today: dt.date | None = None) -> set[str]:
    """UTC days whose results a file can change, from its partition and its footer statistics.

    Device samples: the days of their timestamps. Requests: from the earliest arrival or
    scheduling day to the latest finish day (a request's energy falls on every day it ran, and
    the marts key requests by arrival day). Both are bounded to the file's partition date +- 2
    days (rows further away are quarantined by the loader). Replicas: their ``valid_from`` day
    (callers extend it to every later day). A file without statistics or unreadable counts for
    its partition date (and the day before, for requests).
    """
    today = today or dt.datetime.now(dt.timezone.utc).date()
    part = dt.date.fromisoformat(f.date) if f.date else None
    span = footer_span(Path(spool) / f.rel, f.kind)
    if span is None:
        if part is None:
            return set()
        span = (part - dt.timedelta(days=1), part) if f.kind == "requests" else (part, part)
    lo, hi = span
    if part is not None:
        slack = dt.timedelta(days=PARTITION_SLACK_DAYS + 1)
        lo = max(lo, part - slack)
        hi = min(hi, part + slack)
    lo = max(lo, FAR_PAST)
    hi = min(hi, today + dt.timedelta(days=1))
    out = set()
    d = lo
    while d <= hi:
        out.add(d.isoformat())
        d += dt.timedelta(days=1)
    if part is not None and FAR_PAST <= part <= today + dt.timedelta(days=1):
        out.add(part.isoformat())
    return out


def spool_dates(spool: Path | str, kinds=("device_samples", "requests")) -> list[str]:
    """Every partition date the spool has data for (from the directory names, reads nothing)."""
    out = set()
    for kind in kinds:
        root = Path(spool) / kind
        if not root.is_dir():
            continue
        for p in root.iterdir():
            if p.is_dir() and p.name.startswith("date="):
                d, _ = partition_values(p.name)
                if d:
                    out.add(d)
    return sorted(out)


def dirty_dates(con) -> set[str]:
    try:
        return {str(r[0]) for r in con.execute("select distinct date from raw.dirty_days").fetchall()}
    except Exception:
        return set()


def pending(con, spool: Path | str) -> list[Pending]:
    """Files of the spool that a load would read (new, changed, retried) or record (duplicates)."""
    manifest = read_manifest(con) if con is not None else {}
    return classify(scan_spool(spool), manifest, spool)


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
        dates |= {d for d in spool_dates(spool) if d >= first}
        dates.add(first)
    return sorted(dates)


def date_ranges(dates) -> list[tuple[str, str]]:
    """Contiguous runs of ISO days, as inclusive (first, last) pairs, in order."""
    days = sorted({dt.date.fromisoformat(d) if isinstance(d, str) else d for d in dates})
    out = []
    for d in days:
        if out and (d - out[-1][1]).days == 1:
            out[-1][1] = d
        else:
            out.append([d, d])
    return [(a.isoformat(), b.isoformat()) for a, b in out]


def dbt_window_vars(first: str | dt.date, last: str | dt.date) -> dict:
    """dbt ``--vars`` for the inclusive UTC day window [first, last] (models filter on it)."""
    a = first if isinstance(first, dt.date) else dt.date.fromisoformat(str(first)[:10])
    b = last if isinstance(last, dt.date) else dt.date.fromisoformat(str(last)[:10])
    if b < a:
        raise ValueError(f"empty window: {a} > {b}")
    return {"min_date": a.isoformat(), "max_date": b.isoformat()}


def dbt_window(con, first: str, last: str) -> tuple[str, str]:
    """The days whose mart rows a rebuild of attribution days [first, last] can change.

    The marts key requests by arrival day; a request that arrived before ``first`` and ran into
    the window has energy there, so its arrival day is rebuilt too (usually ``first - 1`` when
    requests cross midnight, else ``first``)."""
    a = dt.date.fromisoformat(str(first)[:10])
    b = dt.date.fromisoformat(str(last)[:10])
    lo = dt.datetime(a.year, a.month, a.day, tzinfo=dt.timezone.utc)
    hi = dt.datetime(b.year, b.month, b.day, tzinfo=dt.timezone.utc) + dt.timedelta(days=1)
    try:
        r = con.execute("""
            select min(cast(arrival_ts as date)) from raw.requests
            where _date between ? and ? and finish_ts >= ? and coalesce(scheduled_ts, arrival_ts) < ?
        """, [a - dt.timedelta(days=1), b + dt.timedelta(days=1), lo, hi]).fetchone()[0]
    except Exception:
        r = None
    start = min(a, r) if r is not None else a
    return start.isoformat(), b.isoformat()


# ------------------------------------------------------------------------------------- checks
def freshness_by_node(con, max_age_s: float, reference: str = "data") -> dict:
    """Age of each node's latest sample. ``reference``: 'data' measures against the newest sample
    of the whole fleet (simulated or replayed data), 'now' against the wall clock."""
    rows = con.execute("""
        select node, max(ts) as last_ts from raw.device_samples group by node order by node
    """).fetchall()
    if not rows:
        return {"passed": False, "stale": [], "nodes": 0, "reason": "no device samples"}
    if reference == "now":
        ref = dt.datetime.now(dt.timezone.utc)
    else:
        ref = max(r[1] for r in rows)
    ages = {r[0]: (ref - r[1]).total_seconds() for r in rows}
    stale = sorted(n for n, a in ages.items() if a > max_age_s)
    return {"passed": not stale, "stale": stale, "nodes": len(rows), "reference": reference,
            "reference_ts": ref.isoformat(), "max_age_s": max_age_s,
            "worst_age_s": max(ages.values()), "ages_s": ages}


def completeness_by_device_day(con, first: str, last: str, min_ratio: float) -> dict:
    """Received vs expected samples per device and day in [first, last]. Expected = the span of
    the day the device was sampled in (from midnight to midnight, or from its first/last sample
    on its first/last day) divided by the device's median sampling interval."""
    rows = con.execute("""
        with s as (
            select device_id, _date as date, epoch(ts) as t,
                   epoch(ts) - lag(epoch(ts)) over (partition by device_id order by ts) as dt
            from raw.device_samples where _date between ? and ?
        ),
        dev as (
            select device_id, median(dt) filter (where dt > 0) as interval_s,
                   min(t) as first_t, max(t) as last_t
            from s group by device_id
        ),
        days as (
            select device_id, date, count(*) as received, min(t) as t0, max(t) as t1 from s group by all
        )
        select d.device_id, d.date, d.received,
               (least(epoch(d.date + interval 1 day), dev.last_t + dev.interval_s)
                 - greatest(epoch(d.date), dev.first_t)) / dev.interval_s as expected
        from days d join dev using (device_id)
        where dev.interval_s > 0
        order by d.device_id, d.date
    """, [first, last]).fetchall()
    short = [(r[0], str(r[1]), int(r[2]), float(r[3])) for r in rows if r[3] > 0 and r[2] < min_ratio * r[3]]
    worst = min((r[2] / r[3] for r in rows if r[3] > 0), default=1.0)
    return {"passed": not short and bool(rows), "device_days": len(rows), "short": short,
            "worst_ratio": float(min(worst, 1.0)), "min_ratio": min_ratio,
            "reason": None if rows else "no device samples in the window"}


def quarantine_rate(con, first: str, last: str, max_rate: float) -> dict:
    """Refused rows / rows seen, per kind, over the files of the window's partitions (files with
    no usable partition date count in every window). Unreadable files count as refused."""
    rows = con.execute("""
        select kind, sum(rows) as good, sum(rows_quarantined) as bad,
               count(*) filter (where status in ('unreadable', 'rejected', 'error')) as bad_files,
               count(*) as files
        from raw.manifest
        where (try_cast(date as date) between ? and ? or try_cast(date as date) is null)
          and status <> 'duplicate'
        group by kind order by kind
    """, [first, last]).fetchall()
    rates = {}
    for kind, good, bad, bad_files, files in rows:
        seen = (good or 0) + (bad or 0)
        rates[kind] = {"rows": int(seen), "quarantined": int(bad or 0),
                       "rate": float(bad or 0) / seen if seen else 0.0,
                       "unreadable_files": int(bad_files), "files": int(files)}
    over = sorted(k for k, v in rates.items() if v["rate"] > max_rate)
    return {"passed": not over, "over": over, "rates": rates, "max_rate": max_rate}
