"""Small spool tables for the loader tests (device samples, requests, replicas) and helpers to put
them into a spool and query the warehouse."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pyarrow as pa

from collectors.schema import DEVICE_SAMPLES, REPLICAS, REQUESTS
from collectors.spool import partition_dir, write_atomic

DAY = dt.datetime(2026, 10, 1, tzinfo=dt.timezone.utc)
T0 = DAY.timestamp()
TS = DEVICE_SAMPLES.field("ts").type


def ts(seconds) -> pa.Array:
    return pa.array((np.asarray(seconds, dtype=np.float64) * 1e6).astype(np.int64)).cast(TS)


def samples(device="n1/0", n=100, start=T0 + 5, step=10.0, node="n1", chip="nvidia-h100-sxm", **over):
    t = start + np.arange(n) * step
    cols = {
        "ts": ts(t), "node": [node] * n, "device_id": [device] * n, "device_index": pa.array([0] * n, pa.int32()),
        "device_uuid": ["GPU-x"] * n, "chip": [chip] * n, "vendor": ["nvidia"] * n,
        "power_w": np.full(n, 300.0), "power_kind": ["avg_1s"] * n,
        "energy_counter_j": 1e6 + np.arange(n) * 3000.0, "utilization_pct": np.full(n, 50.0),
        "memory_used_mib": np.full(n, 1000.0), "temperature_c": np.full(n, 50.0),
        "sm_clock_mhz": np.full(n, 1500.0), "power_limit_w": np.full(n, 700.0), "source": ["test"] * n,
    }
    cols.update(over)
    return pa.table(cols, schema=DEVICE_SAMPLES)


def requests(n=50, prefix="r", start=T0 + 100, node="n1", replica="rep1", model="llama-8b", **over):
    a = start + np.arange(n) * 30.0
    cols = {
        "request_id": [f"{prefix}{i}" for i in range(n)], "node": [node] * n, "replica_id": [replica] * n,
        "model": [model] * n, "task": ["chat"] * n, "language": ["en"] * n, "tier": ["api"] * n,
        "arrival_ts": ts(a), "scheduled_ts": ts(a + 0.1), "first_token_ts": ts(a + 0.5), "finish_ts": ts(a + 5),
        "prompt_tokens": pa.array([100] * n, pa.int64()), "completion_tokens": pa.array([50] * n, pa.int64()),
        "status": ["ok"] * n,
    }
    cols.update(over)
    return pa.table(cols, schema=REQUESTS)


def replicas(replica="rep1", node="n1", devices=("n1/0",), model="llama-8b", chip="nvidia-h100-sxm", t=T0):
    return pa.table({"replica_id": [replica], "node": [node], "model": [model], "chip": [chip],
                     "device_ids": [list(devices)], "valid_from": ts([t])}, schema=REPLICAS)


def put(spool: Path, kind: str, name: str, table: pa.Table, date="2026-10-01", node="n1") -> str:
    """Write ``table`` as ``<name>.parquet`` of (kind, date, node); the path relative to the spool."""
    path = partition_dir(spool, kind, date, node) / f"{name}.parquet"
    write_atomic(table, path)
    return path.relative_to(spool).as_posix()


def put_raw(spool: Path, rel: str, table: pa.Table) -> str:
    """Write ``table`` at exactly ``rel`` (names an old or careless writer might have used)."""
    write_atomic(table, Path(spool) / rel)
    return rel


def q(con, sql, params=None):
    return con.execute(sql, params or []).fetchall()
