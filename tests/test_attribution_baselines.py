"""The baselines' overlap join (an equi-join on time buckets) finds exactly the request-interval
pairs of the plain inequality join, each once: intervals that straddle buckets, a long sampling
gap, requests shorter than a bucket and requests spanning many, on two replicas."""
from __future__ import annotations

import duckdb
import numpy as np

from warehouse.attribution.baselines import build_baselines

BRUTE = """
select r.request_id, i.device_id, i.t0, least(r.e, i.t1) - greatest(r.s, i.t0) as ov_s
from _bl_iv i join _bl_rq r on r.replica_id = i.replica_id and r.s < i.t1 and r.e > i.t0
"""


def _warehouse() -> duckdb.DuckDBPyConnection:
    rng = np.random.default_rng(3)
    con = duckdb.connect()
    con.execute("set TimeZone = 'UTC'")
    con.execute("create schema raw; create schema attribution")
    con.execute("create table raw.replicas (replica_id varchar, device_ids varchar[])")
    con.execute("insert into raw.replicas values ('r0', ['d0', 'd1']), ('r1', ['d2'])")
    con.execute("create table raw.device_samples (device_id varchar, ts timestamptz, power_w double, "
                "energy_counter_j double)")
    t0 = 1_790_000_000.0
    for dev in ("d0", "d1", "d2"):
        ts = t0 + np.cumsum(rng.uniform(0.5, 3.0, 400))
        ts[200:] += 500.0  # a sampling gap far wider than a bucket
        power = rng.uniform(100, 700, ts.size)
        counter = np.cumsum(power * 1.0)
        con.executemany("insert into raw.device_samples values (?, to_timestamp(?), ?, ?)",
                        [(dev, float(t), float(p), float(c)) for t, p, c in zip(ts, power, counter)])
    con.execute("create table raw.requests (request_id varchar, replica_id varchar, arrival_ts timestamptz, "
                "scheduled_ts timestamptz, finish_ts timestamptz, prompt_tokens bigint, completion_tokens bigint)")
    rows = []
    for k in range(300):
        s = t0 + rng.uniform(0, 1500)
        dur = rng.choice([0.01, 0.3, 2.0, 40.0, 400.0])
        rows.append((f"q{k}", "r0" if k % 3 else "r1", s, s, s + dur, int(rng.integers(1, 500)),
                     int(rng.integers(1, 500))))
    con.executemany("insert into raw.requests values (?, ?, to_timestamp(?), to_timestamp(?), to_timestamp(?), ?, ?)",
                    rows)
    con.execute("create table attribution.device_day (device_id varchar, date date, idle_w double)")
    return con


def test_bucketed_overlap_join_equals_the_inequality_join() -> None:
    con = _warehouse()
    build_baselines(con)
    got = con.execute("select request_id, device_id, t0, ov_s from _bl_ov order by all").fetchall()
    want = con.execute(f"select * from ({BRUTE}) order by all").fetchall()
    assert len(got) == len(want) > 1000
    assert [g[:3] for g in got] == [w[:3] for w in want]
    assert np.allclose([g[3] for g in got], [w[3] for w in want], rtol=0, atol=1e-9)
    # every request's share of every interval it overlaps is there once: the shares sum to the pool
    tp = con.execute("select sum(energy_j) from _bl_interval_time_present").fetchone()[0]
    pool = con.execute("select sum(e_j) from (select distinct device_id, t0, e_j from _bl_ov)").fetchone()[0]
    assert abs(tp - pool) <= 1e-9 * pool
