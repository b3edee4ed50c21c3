"""Run the attribution over the warehouse: raw samples and requests in, per-request joules out.

Writes ``attribution.request_energy`` (one row per request) and ``attribution.device_day``
(per device and UTC day: measured, attributed active, shared idle, unused, and the same totals
summed independently from the request side, so conservation can be checked).
"""
from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass

import duckdb
import numpy as np
import pyarrow as pa
import yaml

from collectors.fleet import CATALOG

from .attribution import DAY_S, AttributionConfig, ReplicaWork, attribute_device, device_intervals


def catalog_chips() -> dict:
    return yaml.safe_load((CATALOG / "chips.yaml").read_text())["chips"]


@dataclass
class Inputs:
    """Plain arrays the attribution needs, grouped by device and by replica."""

    samples: dict  # device_id -> (ts, power_w, counter_j, chip)
    requests: dict  # replica_id -> dict of arrays (ids, sched, first, finish, prompt, completion)
    replicas: dict  # replica_id -> (chip, [device_ids])


def read_inputs(con: duckdb.DuckDBPyConnection) -> Inputs:
    s = con.sql("""
        select device_id, any_value(chip) over (partition by device_id) as chip,
               epoch_us(ts) / 1e6 as t, power_w, energy_counter_j
        from raw.device_samples order by device_id, ts
    """).to_arrow_table()
    samples = {}
    dev = s["device_id"].to_numpy(zero_copy_only=False)
    if dev.shape[0]:
        t = s["t"].to_numpy()
        p = s["power_w"].to_numpy(zero_copy_only=False).astype(np.float64)
        c = s["energy_counter_j"].to_numpy(zero_copy_only=False).astype(np.float64)
        chip = s["chip"].to_numpy(zero_copy_only=False)
        bounds = np.nonzero(dev[1:] != dev[:-1])[0] + 1
        starts = np.concatenate([[0], bounds])
        ends = np.concatenate([bounds, [dev.shape[0]]])
        for a, b in zip(starts, ends):
            samples[dev[a]] = (t[a:b], p[a:b], c[a:b], chip[a])
    r = con.sql("""
        select replica_id,
               epoch_us(coalesce(scheduled_ts, arrival_ts)) / 1e6 as s,
               epoch_us(coalesce(first_token_ts, finish_ts)) / 1e6 as f,
               epoch_us(finish_ts) / 1e6 as e, prompt_tokens::double as p, completion_tokens::double as c
        from raw.requests order by replica_id, s, request_id
    """).to_arrow_table()
    requests = {}
    rep = r["replica_id"].to_numpy(zero_copy_only=False)
    if rep.shape[0]:
        cols = {k: r[k].to_numpy() for k in ("s", "f", "e", "p", "c")}
        bounds = np.nonzero(rep[1:] != rep[:-1])[0] + 1
        starts = np.concatenate([[0], bounds])
        ends = np.concatenate([bounds, [rep.shape[0]]])
        for a, b in zip(starts, ends):
            requests[rep[a]] = {"offset": int(a), **{k: v[a:b] for k, v in cols.items()}}
    replicas = {}
    for rid, chip, devs in con.execute("""
        select replica_id, any_value(chip), arg_max(device_ids, valid_from) from raw.replicas group by 1
    """).fetchall():
        replicas[rid] = (chip, [d for d in devs.split(",") if d])
    return Inputs(samples, requests, replicas)


def attribute(inp: Inputs, cfg: AttributionConfig | None = None, chips: dict | None = None) -> tuple[pa.Table, pa.Table]:
    """Pure attribution over arrays: returns (request_energy, device_day) Arrow tables."""
    cfg = cfg or AttributionConfig.load()
    chips = chips if chips is not None else catalog_chips()
    device_replica = {}
    for rid, (_chip, devs) in inp.replicas.items():
        for d in devs:
            device_replica[d] = rid
    works = {}
    req_active = {}
    req_idle = {}
    for rid, rq in inp.requests.items():
        chip = inp.replicas.get(rid, (None, []))[0]
        works[rid] = ReplicaWork.build(rq["s"], rq["f"], rq["e"], rq["p"], rq["c"], 1.0, 1.0)
        req_active[rid] = np.zeros(rq["s"].shape[0])
        req_idle[rid] = np.zeros(rq["s"].shape[0])
    day_rows = []
    for dev_id, (t, p, c, chip) in inp.samples.items():
        spec = chips.get(chip, {})
        rated = float(spec.get("rated_power_w", 1000.0))
        wrap = (spec.get("sensor") or {}).get("counter_wrap_j")
        idle_cat = float(spec.get("idle_power_w", 0.1 * rated)) + float(spec.get("model_loaded_idle_extra_w", 0.0))
        iv = device_intervals(t, p, c, rated, wrap, cfg)
        rid = device_replica.get(dev_id)
        work = works.get(rid) if rid else None
        res = attribute_device(iv, work, idle_cat, cfg, cfg.weights(chip))
        if work is not None:
            req_active[rid] += res.req_active_j
            req_idle[rid] += res.req_idle_j
        if res.interval_day.shape[0] == 0:
            continue
        days, inv = np.unique(res.interval_day, return_inverse=True)

        def per_day(x):
            return np.bincount(inv, weights=x, minlength=days.shape[0])

        measured = per_day(res.measured_j)
        act = per_day(res.active_attr_j)
        idl = per_day(res.idle_shared_j)
        unused = per_day(res.unused_j)
        n_counter = per_day((res.source == 0).astype(float))
        n_integ = per_day((res.source == 1).astype(float))
        gap_s = per_day(np.where(res.gap, res.duration_s, 0.0))
        covered = per_day(res.duration_s)
        for k, d in enumerate(days):
            day_rows.append((
                dt.date(1970, 1, 1) + dt.timedelta(days=int(d)), dev_id, chip, rid,
                float(measured[k]), float(act[k]), float(idl[k]), float(unused[k]),
                float(res.req_day_active.get(int(d), 0.0)), float(res.req_day_idle.get(int(d), 0.0)),
                int(n_counter[k]), int(n_integ[k]), float(gap_s[k]), float(covered[k]),
                res.resets if k == 0 else 0, res.idle_w, res.idle_source,
            ))
    # rows in the order of the read query (replica_id, s, request_id); ids are re-attached in SQL
    order = sorted(inp.requests, key=lambda r: inp.requests[r]["offset"])
    act = np.concatenate([req_active[r] for r in order]) if order else np.zeros(0)
    idl = np.concatenate([req_idle[r] for r in order]) if order else np.zeros(0)
    req_tbl = pa.table({"active_energy_j": act, "idle_share_j": idl, "energy_j": act + idl})
    names = ["date", "device_id", "chip", "replica_id", "measured_energy_j", "attributed_active_j",
             "shared_idle_j", "unused_j", "request_side_active_j", "request_side_idle_j",
             "counter_intervals", "integrated_intervals", "gap_s", "covered_s", "counter_resets",
             "idle_w", "idle_source"]
    cols = list(zip(*day_rows)) if day_rows else [[] for _ in names]
    types = [pa.date32(), pa.string(), pa.string(), pa.string()] + [pa.float64()] * 6 + \
            [pa.int64(), pa.int64(), pa.float64(), pa.float64(), pa.int64(), pa.float64(), pa.string()]
    day_tbl = pa.table({n: pa.array(list(c), t) for n, c, t in zip(names, cols, types)})
    return req_tbl, day_tbl


def run_attribution(con: duckdb.DuckDBPyConnection, cfg: AttributionConfig | None = None) -> dict:
    """Attribute everything in ``raw`` and replace the ``attribution`` tables. Returns timings."""
    t0 = time.perf_counter()
    inp = read_inputs(con)
    t1 = time.perf_counter()
    req_tbl, day_tbl = attribute(inp, cfg)
    t2 = time.perf_counter()
    con.execute("create schema if not exists attribution")
    con.register("_req", req_tbl)
    con.register("_day", day_tbl)
    con.execute("begin")
    con.execute("""
        create or replace table attribution.request_energy as
        with ids as (
            select request_id from raw.requests
            order by replica_id, epoch_us(coalesce(scheduled_ts, arrival_ts)) / 1e6, request_id
        )
        select ids.request_id, _req.* from ids positional join _req
    """)
    con.execute("create or replace table attribution.device_day as select * from _day")
    con.execute("commit")
    con.unregister("_req")
    con.unregister("_day")
    t3 = time.perf_counter()
    return {"read_s": t1 - t0, "attribute_s": t2 - t1, "write_s": t3 - t2,
            "requests": req_tbl.num_rows, "device_days": day_tbl.num_rows}
