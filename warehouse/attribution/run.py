"""Run the attribution over the warehouse: raw samples and requests in, per-request joules out.

Writes ``attribution.request_energy`` (one row per request and UTC day), ``attribution.device_day``
(per device and UTC day: measured, attributed active, shared idle, unused, and the same totals
summed independently from the request side, so conservation can be checked) and
``attribution.clock_skew`` (per node and day) and ``attribution.power_model`` (the power model
learned per device and day, or why the step share was used instead).
"""
from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import datetime as dt
import time

import duckdb
import numpy as np
import pyarrow as pa

from collectors.catalog import load_chips
from warehouse.attribution import read, tables
from warehouse.attribution.config import AttributionConfig, SkewConfig
from warehouse.attribution.days import attribute_days, estimate_node_skew
from warehouse.attribution.tables import date_of, day_number


def catalog_chips() -> dict:
    """The validated chip catalog, as plain mappings (chip -> fields)."""
    return {k: dataclasses.asdict(v) for k, v in load_chips().items()}


def data_day_range(con) -> tuple[dt.date, dt.date] | None:
    """First and last UTC day with samples or requests in raw."""
    r = con.execute("""
        select min(d), max(d) from (
            select min(_date) as d from raw.device_samples union all select max(_date) from raw.device_samples
            union all select min(cast(coalesce(scheduled_ts, arrival_ts) as date)) from raw.requests
            union all select max(_date) from raw.requests)
    """).fetchone()
    return None if r[0] is None else (r[0], r[1])


def _as_date(d) -> dt.date:
    return dt.date.fromisoformat(str(d)[:10])


def run_attribution_days(con: duckdb.DuckDBPyConnection, first: dt.date | str | None = None,
                         last: dt.date | str | None = None, cfg: AttributionConfig | None = None,
                         days_per_pass: int = 1, skew_cfg: SkewConfig | None = None) -> dict:
    """Attribute the UTC days [first, last] (default: every day with data), each day on its own
    samples and on the requests that ran that day, and replace exactly those days' rows of
    ``attribution.request_energy`` (request_id, date, ...), ``attribution.device_day`` and
    ``attribution.clock_skew`` (per node and day: the estimated offset of the device samples' clock
    from the requests', its correlation, and whether the attribution corrected it).

    Days outside the window keep their rows, so re-running one day after a late file changes that
    day only; attributing every day at once or one day at a time gives the same tables. A long
    window is processed ``days_per_pass`` days at a time (one transaction each), so memory is
    bounded by a day of the fleet, not by the window; a run killed between passes is finished by
    the next run over the same window.
    """
    full = data_day_range(con)
    if full is None:
        lo = _as_date(first) if first else dt.datetime.now(dt.timezone.utc).date()
        hi = _as_date(last) if last else lo
    else:
        lo = _as_date(first) if first else full[0]
        hi = _as_date(last) if last else full[1]
    step = days_per_pass if days_per_pass > 0 else (hi - lo).days + 1
    cfg = cfg or AttributionConfig.load()
    total: dict = {}
    d = lo
    with _memory_capped(con, cfg.duckdb_memory_limit_mb):
        while d <= hi:
            e = min(hi, d + dt.timedelta(days=step - 1))
            for k, v in _run_attribution_window(con, d, e, cfg, skew_cfg).items():
                if isinstance(v, (int, float)):
                    total[k] = total.get(k, 0) + v
            d = e + dt.timedelta(days=1)
            if d <= hi:
                _release_memory(con)
    total.update(first=lo.isoformat(), last=hi.isoformat(), days=(hi - lo).days + 1)
    return total


@contextlib.contextmanager
def _memory_capped(con: duckdb.DuckDBPyConnection, limit_mb: int):
    """DuckDB's memory_limit at ``limit_mb`` for the run (0: unchanged), the old value restored."""
    if limit_mb <= 0:
        yield
        return
    old = con.execute("select current_setting('memory_limit')").fetchone()[0]
    con.execute(f"set memory_limit = '{int(limit_mb)}MB'")
    try:
        yield
    finally:
        con.execute(f"set memory_limit = '{_setting(old)}'")


def _setting(value: str) -> str:
    """A memory_limit as DuckDB shows it ('2.6 GiB', truncated to 0.1), made a SET value that shows
    the same again (half a display step added back); anything but a plain size is refused."""
    number, _, unit = value.strip().partition(" ")
    if unit not in ("bytes", "KiB", "MiB", "GiB", "TiB") or not number.replace(".", "", 1).isdigit():
        raise ValueError(f"unexpected DuckDB memory_limit {value!r}")
    return f"{float(number) + 0.05:.2f} {unit}" if unit != "bytes" else f"{number} bytes"


def _release_memory(con: duckdb.DuckDBPyConnection) -> None:
    """Between passes: checkpoint (the pass's rows leave the WAL and buffers) and give freed heap
    back to the OS where glibc allows, so a long window's memory stays that of one pass."""
    con.execute("checkpoint")
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to trim
        pass


@dataclasses.dataclass
class _Window:
    """One window's inputs and the rows and timings it accumulates."""

    con: duckdb.DuckDBPyConnection
    first: dt.date
    last: dt.date
    days: list
    cfg: AttributionConfig
    skew_cfg: SkewConfig
    chips: dict
    args: list
    samples: dict = dataclasses.field(default_factory=dict)
    device_node: dict = dataclasses.field(default_factory=dict)
    replicas: dict = dataclasses.field(default_factory=dict)
    replica_model: dict = dataclasses.field(default_factory=dict)
    power_rows: list = dataclasses.field(default_factory=list)
    req_replicas: set = dataclasses.field(default_factory=set)
    day_rows: list = dataclasses.field(default_factory=list)
    skew_rows: list = dataclasses.field(default_factory=list)
    seen: set = dataclasses.field(default_factory=set)
    timings: dict = dataclasses.field(default_factory=lambda: dict(read_s=0.0, attribute_s=0.0, clock_skew_s=0.0,
                                                                   write_s=0.0))
    request_day_rows: int = 0

    def add_time(self, key: str, t0: float) -> float:
        t1 = time.perf_counter()
        self.timings[key] += t1 - t0
        return t1


def _read_window(w: _Window) -> dict:
    """Read the window's replicas and samples; returns {node: [replica_id, ...]}."""
    lo_ts = dt.datetime(w.first.year, w.first.month, w.first.day, tzinfo=dt.timezone.utc)
    hi_ts = lo_ts + dt.timedelta(days=len(w.days))
    w.args = read.window_args(w.first, w.last, lo_ts, hi_ts)
    w.replicas, replica_node, w.replica_model = read.read_replicas(w.con)
    w.samples, w.device_node = read.read_samples(w.con, w.first, w.last, lo_ts, hi_ts)
    w.req_replicas = set(read.request_replicas(w.con, w.args))
    by_node: dict = {}
    for rid in sorted(set(w.replicas) | w.req_replicas):
        node = replica_node.get(rid) or next((w.device_node[d] for d in w.replicas.get(rid, [])
                                              if d in w.device_node), None)
        by_node.setdefault(node or "", []).append(rid)
    return by_node


def _load_replica(w: _Window, rid: str):
    ids = rq = None
    if rid in w.req_replicas:
        ids, rq = read.read_requests(w.con, rid, w.args)
    devs = [(d, *w.samples[d]) for d in w.replicas.get(rid, []) if d in w.samples]
    w.seen.update(w.replicas.get(rid, []))
    return rid, rq, ids, devs


def _write_requests(w: _Window, ids, req_rows: list) -> None:
    tbl = pa.concat_tables([tables.request_day_table(ids.take(pa.array(idx)), day, *r) for idx, day, *r in req_rows])
    tables.insert_arrow(w.con, "request_energy", tbl)
    w.request_day_rows += tbl.num_rows


def _attribute_node(w: _Window, node: str, rids: list) -> dict:
    """A node's clock skew (estimated from all its replicas, corrected or not), then each replica."""
    t0 = time.perf_counter()
    loaded = [_load_replica(w, rid) for rid in rids]
    t0 = w.add_time("read_s", t0)
    shifts, cache = {}, {}
    if node:
        estimates, cache = estimate_node_skew([(rq, devs) for _, rq, _, devs in loaded], w.days, w.cfg,
                                              w.skew_cfg, w.chips)
        for day, est in sorted(estimates.items()):
            w.skew_rows.append((date_of(day), node, est.skew_s, est.correlation, est.correlation_at_zero,
                                est.devices, est.applied))
            if est.applied:
                shifts[day] = est.skew_s
    w.add_time("clock_skew_s", t0)
    t0 = w.add_time("attribute_s", t0)
    for rid, rq, ids, devs in loaded:
        req_rows, rows = attribute_days(rq, devs, w.days, w.cfg, w.chips, rid, shifts, cache,
                                        w.replica_model.get(rid), w.power_rows)
        t0 = w.add_time("attribute_s", t0)
        w.day_rows += rows
        if req_rows:
            _write_requests(w, ids, req_rows)
        t0 = w.add_time("write_s", t0)
    return shifts


def _run_attribution_window(con: duckdb.DuckDBPyConnection, first: dt.date, last: dt.date,
                            cfg: AttributionConfig | None = None, skew_cfg: SkewConfig | None = None) -> dict:
    t_start = time.perf_counter()
    w = _Window(con, first, last, list(range(day_number(first), day_number(last) + 1)),
                cfg or AttributionConfig.load(), skew_cfg or SkewConfig.load(), catalog_chips(), [])
    tables.create_tables(con)
    con.execute("begin")
    try:
        for name in tables.DAILY_TABLES:
            con.execute(f"delete from attribution.{name} where date between ? and ?", [first, last])
        t0 = time.perf_counter()
        by_node = _read_window(w)
        w.add_time("read_s", t0)
        node_shifts = {node: _attribute_node(w, node, by_node[node]) for node in sorted(by_node)}
        t0 = time.perf_counter()
        for dev in sorted(set(w.samples) - w.seen):  # devices in no replica: measured and unused only
            w.day_rows += attribute_days(None, [(dev, *w.samples[dev])], w.days, w.cfg, w.chips, None,
                                         node_shifts.get(w.device_node.get(dev), {}))[1]
        t0 = w.add_time("attribute_s", t0)
        tables.insert_arrow(con, "device_day", tables.day_table(w.day_rows))
        tables.insert_arrow(con, "clock_skew", tables.skew_table(w.skew_rows))
        tables.insert_arrow(con, "power_model", tables.power_table(w.power_rows))
        con.execute("commit")
        w.add_time("write_s", t0)
    except Exception:
        try:
            con.execute("rollback")
        except duckdb.Error:
            pass
        raise
    return {**w.timings, "total_s": time.perf_counter() - t_start, "request_day_rows": w.request_day_rows,
            "device_days": len(w.day_rows), "skew_corrected": sum(1 for r in w.skew_rows if r[-1])}
