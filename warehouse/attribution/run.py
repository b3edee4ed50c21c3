"""Run the attribution over the warehouse: raw samples and requests in, per-request joules out.

Writes ``attribution.request_energy`` (one row per request and UTC day) and ``attribution.device_day``
(per device and UTC day: measured, attributed active, shared idle, unused, and the same totals
summed independently from the request side, so conservation can be checked).
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import time

import duckdb
import numpy as np
import pyarrow as pa

from collectors.catalog import load_chips

from warehouse.attribution.kernels import DAY_S, AttributionConfig, ReplicaWork, attribute_device, device_intervals, request_spans
from warehouse.attribution.clock_skew import SkewConfig, estimate_day, should_correct


def catalog_chips() -> dict:
    """The validated chip catalog, as plain mappings (chip -> fields)."""
    return {k: dataclasses.asdict(v) for k, v in load_chips().items()}


def _groups(codes: np.ndarray):
    """Start and end offsets of runs of equal codes in a sorted code array."""
    if codes.shape[0] == 0:
        return []
    bounds = np.nonzero(codes[1:] != codes[:-1])[0] + 1
    starts = np.concatenate([[0], bounds])
    ends = np.concatenate([bounds, [codes.shape[0]]])
    return list(zip(starts.tolist(), ends.tolist()))


DAY_COLUMNS = ["date", "device_id", "chip", "replica_id", "measured_energy_j", "attributed_active_j",
               "shared_idle_j", "unused_j", "request_side_active_j", "request_side_idle_j",
               "counter_intervals", "integrated_intervals", "gap_s", "covered_s", "counter_resets",
               "idle_w", "idle_source"]
DAY_TYPES = [pa.date32(), pa.string(), pa.string(), pa.string()] + [pa.float64()] * 6 + \
            [pa.int64(), pa.int64(), pa.float64(), pa.float64(), pa.int64(), pa.float64(), pa.string()]


def day_table(day_rows: list) -> pa.Table:
    cols = list(zip(*day_rows)) if day_rows else [[] for _ in DAY_COLUMNS]
    return pa.table({n: pa.array(list(c), t) for n, c, t in zip(DAY_COLUMNS, cols, DAY_TYPES)})


# ------------------------------------------------------------------ per UTC day (the pipeline's)
#: columns of attribution.request_energy as the pipeline writes it: one row per request and UTC
#: day it ran on (a request crossing midnight has one row per day; sum them for the request)
REQUEST_DAY_SCHEMA = pa.schema([("request_id", pa.string()), ("date", pa.date32()),
                                ("active_energy_j", pa.float64()), ("idle_share_j", pa.float64()),
                                ("energy_j", pa.float64())])
_EPOCH = dt.date(1970, 1, 1)


def _day_number(d: dt.date) -> int:
    return (d - _EPOCH).days


def day_intervals(t: np.ndarray, p: np.ndarray, c: np.ndarray, day: int, rated_w: float, wrap_j,
                  cfg: AttributionConfig, iv=None):
    """Intervals of one device on one UTC day, from that day's samples only.

    Between samples as :func:`device_intervals` (counter deltas, else integrated power). The
    seconds between midnight and the first sample, and between the last sample and the next
    midnight, are extrapolated from the nearest sample's power when they are no longer than a
    normal sampling gap: so a day never needs its neighbours' samples, and a late file for one
    day changes that day's results only. ``iv``: :func:`device_intervals` of the same samples,
    when already computed.
    """
    from warehouse.attribution.kernels import DeviceIntervals

    d0, d1 = day * DAY_S, (day + 1) * DAY_S
    if iv is None:
        iv = device_intervals(t, p, c, rated_w, wrap_j, cfg)
    ts = np.unique(t)
    if ts.shape[0] < 2:
        return iv
    med = float(np.median(np.diff(ts)))
    limit = max(cfg.gap_factor * med, 2.0 * med + 1.0)
    order = np.argsort(t, kind="stable")
    pw = p[order]
    finite = pw[np.isfinite(pw)]
    p_first = float(finite[0]) if finite.shape[0] else 0.0
    p_last = float(finite[-1]) if finite.shape[0] else 0.0
    starts, ends, energy = [iv.start], [iv.end], [iv.energy_j]
    source, gap = [iv.source], [iv.gap]
    for a, b, pw_ in ((d0, float(ts[0]), p_first), (float(ts[-1]), d1, p_last)):
        if 0.0 < b - a <= limit:
            starts.append(np.array([a]))
            ends.append(np.array([b]))
            energy.append(np.array([max(pw_, 0.0) * (b - a)]))
            source.append(np.array([1], np.int8))
            gap.append(np.array([False]))
    start = np.concatenate(starts)
    o = np.argsort(start, kind="stable")
    return DeviceIntervals(start[o], np.concatenate(ends)[o], np.concatenate(energy)[o],
                           np.concatenate(source)[o], np.concatenate(gap)[o], iv.resets)


def _chip_params(chips: dict, chip: str) -> tuple[float, float | None, float]:
    spec = chips.get(chip, {})
    rated = float(spec.get("rated_power_w", 1000.0))
    wrap = (spec.get("sensor") or {}).get("counter_wrap_j")
    idle_cat = float(spec.get("idle_power_w", 0.1 * rated)) + float(spec.get("model_loaded_idle_extra_w", 0.0))
    return rated, wrap, idle_cat


def _day_slice(t: np.ndarray, day: int, shift_s: float = 0.0) -> tuple[int, int, np.ndarray | None]:
    """Rows [a, b) of a device's sorted samples stamped on ``day``; with a clock correction, the
    mask of those rows whose corrected time (``t - shift_s``) stays inside the day (the day's edges
    are then extrapolated as for any day), else None. Days own samples by their stamped time, so a
    day's result never depends on which other days are attributed with it."""
    d0, d1 = day * DAY_S, (day + 1) * DAY_S
    a, b = np.searchsorted(t, [d0, d1], side="left")
    if not shift_s:
        return int(a), int(b), None
    tt = t[a:b] - shift_s
    return int(a), int(b), (tt >= d0) & (tt < d1)


def estimate_node_skew(replicas: list, days: list[int], cfg: AttributionConfig, skew_cfg: SkewConfig,
                       chips: dict) -> tuple[dict, dict]:
    """Clock skew of one node per day, from its replicas' requests and their devices' samples.

    ``replicas``: (rq, devices) per replica of the node, as :func:`attribute_days` takes them.
    Returns ({day: SkewEstimate}, {(device_id, day): DeviceIntervals}) - the intervals, computed
    on the uncorrected samples, are reused by the attribution of the days left uncorrected.
    """
    estimates: dict = {}
    cache: dict = {}
    weights = (cfg.prefill_power_weight, cfg.decode_power_weight)
    spans = []
    for rq, devs in replicas:
        n = rq["s"].shape[0] if rq is not None else 0
        spans.append(request_spans(rq["s"], rq["f"], rq["e"], rq["c"]) if n else None)
    for day in days:
        d0, d1 = day * DAY_S, (day + 1) * DAY_S
        inputs = []
        for (rq, devs), sp in zip(replicas, spans):
            if sp is None:
                continue
            idx = np.nonzero((sp[0] < d1) & (sp[2] > d0))[0]
            ivs = []
            for dev_id, t, p, c, chip in devs:
                a, b, _ = _day_slice(t, day)
                if b - a < 2:
                    continue
                rated, wrap, _ = _chip_params(chips, chip)
                iv = device_intervals(t[a:b], p[a:b], c[a:b], rated, wrap, cfg)
                cache[(dev_id, day)] = iv
                ivs.append(iv)
            if idx.shape[0] and ivs:
                inputs.append((sp[0][idx], sp[1][idx], sp[2][idx], rq["c"][idx], ivs))
        est = estimate_day(inputs, day, skew_cfg, weights) if inputs else None
        if est is not None:
            est.applied = should_correct(est, skew_cfg)
            estimates[day] = est
    return estimates, cache


def attribute_days(rq: dict | None, devices: list, days: list[int], cfg: AttributionConfig,
                   chips: dict, rid: str | None, shifts: dict | None = None, cache: dict | None = None):
    """Attribute one replica day by day.

    ``rq``: the replica's requests that overlap the days (arrays s, f, e, p, c sorted by s);
    ``devices``: (device_id, ts, power_w, counter_j, chip) with samples of those days only;
    ``shifts``: {day: seconds} to subtract from the devices' sample times that day (a corrected
    clock skew); ``cache``: {(device_id, day): DeviceIntervals} of the uncorrected samples.
    Returns (request rows as (index array, day, active, idle) per day, device-day rows).
    """
    shifts = shifts or {}
    cache = cache or {}
    n = rq["s"].shape[0] if rq is not None else 0
    if n:
        s_cl, _, e_cl = request_spans(rq["s"], rq["f"], rq["e"], rq["c"])
    req_rows = []
    day_rows = []
    for k, day in enumerate(days):
        d0, d1 = day * DAY_S, (day + 1) * DAY_S
        if n:
            idx = np.nonzero((s_cl < d1) & (e_cl > d0))[0]
        else:
            idx = np.zeros(0, np.int64)
        work = None
        if idx.shape[0]:
            work = ReplicaWork.build(rq["s"][idx], rq["f"][idx], rq["e"][idx], rq["c"][idx])
        acc_a = np.zeros(idx.shape[0])
        acc_i = np.zeros(idx.shape[0])
        shift = float(shifts.get(day, 0.0))
        for dev_id, t, p, c, chip in devices:
            a, b, keep = _day_slice(t, day, shift)
            rated, wrap, idle_cat = _chip_params(chips, chip)
            if keep is None:
                if b - a < 2:
                    continue
                iv = day_intervals(t[a:b], p[a:b], c[a:b], day, rated, wrap, cfg, cache.get((dev_id, day)))
            else:
                if np.count_nonzero(keep) < 2:
                    continue
                iv = day_intervals(t[a:b][keep] - shift, p[a:b][keep], c[a:b][keep], day, rated, wrap, cfg)
            res = attribute_device(iv, work, idle_cat, cfg, cfg.weights(chip))
            if work is not None:
                acc_a += res.req_active_j
                acc_i += res.req_idle_j
            if res.measured_j.shape[0] == 0:
                continue
            dur = res.duration_s
            day_rows.append((
                _EPOCH + dt.timedelta(days=int(day)), dev_id, chip, rid,
                float(res.measured_j.sum()), float(res.active_attr_j.sum()), float(res.idle_shared_j.sum()),
                float(res.unused_j.sum()),
                float(res.req_day_active.get(int(day), 0.0)), float(res.req_day_idle.get(int(day), 0.0)),
                int(np.count_nonzero(res.source == 0)), int(np.count_nonzero(res.source == 1)),
                float(dur[res.gap].sum()), float(dur.sum()), int(res.resets), float(res.idle_w), res.idle_source,
            ))
        if idx.shape[0]:
            req_rows.append((idx, day, acc_a, acc_i))
    return req_rows, day_rows


SKEW_COLUMNS = ["date", "node", "skew_s", "correlation", "correlation_at_zero", "devices", "applied"]
SKEW_TYPES = [pa.date32(), pa.string(), pa.float64(), pa.float64(), pa.float64(), pa.int64(), pa.bool_()]
SKEW_DDL = """create table if not exists attribution.clock_skew (date date, node varchar, skew_s double,
              correlation double, correlation_at_zero double, devices bigint, applied boolean)"""


def skew_table(rows: list) -> pa.Table:
    cols = list(zip(*rows)) if rows else [[] for _ in SKEW_COLUMNS]
    return pa.table({n: pa.array(list(c), t) for n, c, t in zip(SKEW_COLUMNS, cols, SKEW_TYPES)})


def _attribution_tables_current(con) -> bool:
    """True when attribution.request_energy has the per-day layout (or does not exist yet)."""
    cols = [r[0] for r in con.execute("""
        select column_name from information_schema.columns
        where table_schema = 'attribution' and table_name = 'request_energy'
    """).fetchall()]
    return not cols or "date" in cols


def data_day_range(con) -> tuple[dt.date, dt.date] | None:
    """First and last UTC day with samples or requests in raw."""
    r = con.execute("""
        select min(d), max(d) from (
            select min(_date) as d from raw.device_samples union all select max(_date) from raw.device_samples
            union all select min(cast(coalesce(scheduled_ts, arrival_ts) as date)) from raw.requests
            union all select max(_date) from raw.requests)
    """).fetchone()
    return None if r[0] is None else (r[0], r[1])


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
    lo = dt.date.fromisoformat(str(first)[:10]) if first else (full[0] if full else None)
    hi = dt.date.fromisoformat(str(last)[:10]) if last else (full[1] if full else None)
    if lo is not None and hi is not None and days_per_pass > 0 and (hi - lo).days + 1 > days_per_pass \
            and _attribution_tables_current(con):
        total: dict = {}
        d = lo
        while d <= hi:
            e = min(hi, d + dt.timedelta(days=days_per_pass - 1))
            r = _run_attribution_window(con, d, e, cfg, skew_cfg)
            for k, v in r.items():
                if isinstance(v, (int, float)) and k != "days":
                    total[k] = total.get(k, 0) + v
            d = e + dt.timedelta(days=1)
        total.update(first=lo.isoformat(), last=hi.isoformat(), days=(hi - lo).days + 1)
        return total
    return _run_attribution_window(con, first, last, cfg, skew_cfg)


def _run_attribution_window(con: duckdb.DuckDBPyConnection, first, last,
                            cfg: AttributionConfig | None = None, skew_cfg: SkewConfig | None = None) -> dict:
    cfg = cfg or AttributionConfig.load()
    skew_cfg = skew_cfg or SkewConfig.load()
    chips = catalog_chips()
    t0 = time.perf_counter()
    full = data_day_range(con)
    if full is None:
        first = first or dt.datetime.now(dt.timezone.utc).date()
        last = last or first
    first = dt.date.fromisoformat(str(first)[:10]) if first else full[0]
    last = dt.date.fromisoformat(str(last)[:10]) if last else full[1]
    con.execute("create schema if not exists attribution")
    if not _attribution_tables_current(con):
        # written by run_attribution (one row per request, no day): rebuild every day
        con.execute("drop table attribution.request_energy")
        if full is not None:
            first, last = min(first, full[0]), max(last, full[1])
    days = list(range(_day_number(first), _day_number(last) + 1))
    lo_ts = dt.datetime(first.year, first.month, first.day, tzinfo=dt.timezone.utc)
    hi_ts = lo_ts + dt.timedelta(days=len(days))
    read_s = compute_s = write_s = skew_s = 0.0
    con.execute("begin")
    try:
        con.execute("""create table if not exists attribution.request_energy (request_id varchar, date date,
                       active_energy_j double, idle_share_j double, energy_j double)""")
        cols = ", ".join(f"{n} {t}" for n, t in zip(DAY_COLUMNS, [
            "date", "varchar", "varchar", "varchar"] + ["double"] * 6 + ["bigint", "bigint", "double", "double",
                                                                          "bigint", "double", "varchar"]))
        con.execute(f"create table if not exists attribution.device_day ({cols})")
        con.execute(SKEW_DDL)
        con.execute("delete from attribution.request_energy where date between ? and ?", [first, last])
        con.execute("delete from attribution.device_day where date between ? and ?", [first, last])
        con.execute("delete from attribution.clock_skew where date between ? and ?", [first, last])
        ta = time.perf_counter()
        replicas, replica_node = {}, {}
        for rid, node, devs in con.execute("""
            select replica_id, arg_max(node, valid_from), arg_max(device_ids, valid_from)
            from raw.replicas group by 1 order by 1
        """).fetchall():
            replicas[rid] = [d for d in devs if d]
            replica_node[rid] = node
        s = con.sql("""
            select device_id, chip, node,
                   epoch_us(ts) / 1e6 as t, power_w, energy_counter_j
            from raw.device_samples where _date between ? and ? and ts >= ? and ts < ?
            order by device_id, ts
        """, params=[first, last, lo_ts, hi_ts]).to_arrow_table()
        samples, device_node = {}, {}
        if s.num_rows:
            import pyarrow.compute as pc

            enc = pc.dictionary_encode(s["device_id"]).combine_chunks()
            codes = enc.indices.to_numpy()
            names = enc.dictionary.to_pylist()
            chip_col = s["chip"]
            node_col = s["node"]
            t = s["t"].to_numpy()
            p = s["power_w"].to_numpy(zero_copy_only=False).astype(np.float64)
            c = s["energy_counter_j"].to_numpy(zero_copy_only=False).astype(np.float64)
            for a, b in _groups(codes):
                samples[names[codes[a]]] = (t[a:b], p[a:b], c[a:b], chip_col[a].as_py())
                device_node[names[codes[a]]] = node_col[a].as_py()
        del s
        overlap = """coalesce(scheduled_ts, arrival_ts) < ? and finish_ts >= ? - interval 1 second
                     and _date between ? and ?"""
        window_args = [hi_ts, lo_ts, first - dt.timedelta(days=1), last + dt.timedelta(days=1)]
        req_replicas = [r[0] for r in con.execute(
            f"select distinct replica_id from raw.requests where {overlap} order by 1", window_args).fetchall()]
        read_s += time.perf_counter() - ta
        n_req_rows = 0
        day_rows = []
        skew_rows = []
        node_shifts: dict = {}
        seen = set()
        # replicas node by node: a node's clock skew is estimated from all its replicas, then
        # corrected (or not) before any of them is attributed
        by_node: dict = {}
        for rid in sorted(set(replicas) | set(req_replicas)):
            node = replica_node.get(rid) or next((device_node[d] for d in replicas.get(rid, []) if d in device_node), None)
            by_node.setdefault(node or "", []).append(rid)

        def load_replica(rid):
            rq = ids = None
            if rid in req_replicas:
                r = con.sql(f"""
                    select request_id,
                           epoch_us(coalesce(scheduled_ts, arrival_ts)) / 1e6 as s,
                           epoch_us(coalesce(first_token_ts, finish_ts)) / 1e6 as f,
                           epoch_us(finish_ts) / 1e6 as e, prompt_tokens::double as p, completion_tokens::double as c
                    from raw.requests where replica_id = ? and {overlap}
                    order by s, request_id
                """, params=[rid, *window_args]).to_arrow_table()
                ids = r["request_id"].combine_chunks()
                rq = {k: r[k].to_numpy().astype(np.float64) for k in ("s", "f", "e", "p", "c")}
            devs = [(d, *samples[d]) for d in replicas.get(rid, []) if d in samples]
            seen.update(replicas.get(rid, []))
            return rid, rq, ids, devs

        for node in sorted(by_node):
            ta = time.perf_counter()
            loaded = [load_replica(rid) for rid in by_node[node]]
            tb = time.perf_counter()
            read_s += tb - ta
            shifts, cache = {}, {}
            if node:
                estimates, cache = estimate_node_skew([(rq, devs) for _, rq, _, devs in loaded], days, cfg,
                                                      skew_cfg, chips)
                for day, est in sorted(estimates.items()):
                    skew_rows.append((_EPOCH + dt.timedelta(days=int(day)), node, est.skew_s, est.correlation,
                                      est.correlation_at_zero, est.devices, est.applied))
                    if est.applied:
                        shifts[day] = est.skew_s
                node_shifts[node] = shifts
            skew_s += time.perf_counter() - tb
            compute_s += time.perf_counter() - tb
            for rid, rq, ids, devs in loaded:
                tb = time.perf_counter()
                req_rows, rows = attribute_days(rq, devs, days, cfg, chips, rid, shifts, cache)
                tc = time.perf_counter()
                day_rows += rows
                if req_rows:
                    tbl = pa.concat_tables([pa.Table.from_arrays([
                        ids.take(pa.array(idx)), pa.array(np.full(idx.shape[0], day, np.int32)).cast(pa.date32()),
                        pa.array(a), pa.array(i), pa.array(a + i)], schema=REQUEST_DAY_SCHEMA)
                        for idx, day, a, i in req_rows])
                    con.register("_res", tbl)
                    con.execute("insert into attribution.request_energy select * from _res")
                    con.unregister("_res")
                    n_req_rows += tbl.num_rows
                compute_s += tc - tb
                write_s += time.perf_counter() - tc
            del loaded, cache
        for dev in sorted(set(samples) - seen):  # devices in no replica: measured and unused only
            tb = time.perf_counter()
            day_rows += attribute_days(None, [(dev, *samples[dev])], days, cfg, chips, None,
                                       node_shifts.get(device_node.get(dev), {}))[1]
            compute_s += time.perf_counter() - tb
        tc = time.perf_counter()
        con.register("_day", day_table(day_rows))
        con.execute("insert into attribution.device_day select * from _day")
        con.unregister("_day")
        con.register("_skew", skew_table(skew_rows))
        con.execute("insert into attribution.clock_skew select * from _skew")
        con.unregister("_skew")
        con.execute("commit")
        write_s += time.perf_counter() - tc
    except Exception:
        try:
            con.execute("rollback")
        except duckdb.Error:
            pass
        raise
    return {"first": first.isoformat(), "last": last.isoformat(), "days": len(days), "read_s": read_s,
            "attribute_s": compute_s, "clock_skew_s": skew_s, "write_s": write_s, "total_s": time.perf_counter() - t0,
            "request_day_rows": n_req_rows, "device_days": len(day_rows),
            "skew_corrected": sum(1 for r in skew_rows if r[-1])}


def run_attribution(con: duckdb.DuckDBPyConnection, cfg: AttributionConfig | None = None) -> dict:
    """Attribute every day in ``raw`` and replace the ``attribution`` tables. Returns timings."""
    return run_attribution_days(con, cfg=cfg)
