"""Read one attribution window's inputs from ``raw``: replicas, device samples, requests."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow.compute as pc

#: a request overlaps the window [lo_ts, hi_ts) (its partition within a day of the window)
OVERLAP = """coalesce(scheduled_ts, arrival_ts) < ? and finish_ts >= ? - interval 1 second
             and _date between ? and ?"""


def window_args(first: dt.date, last: dt.date, lo_ts, hi_ts) -> list:
    return [hi_ts, lo_ts, first - dt.timedelta(days=1), last + dt.timedelta(days=1)]


def _groups(codes: np.ndarray):
    """Start and end offsets of runs of equal codes in a sorted code array."""
    if codes.shape[0] == 0:
        return []
    bounds = np.nonzero(codes[1:] != codes[:-1])[0] + 1
    starts = np.concatenate([[0], bounds])
    ends = np.concatenate([bounds, [codes.shape[0]]])
    return list(zip(starts.tolist(), ends.tolist()))


def read_replicas(con) -> tuple[dict, dict, dict]:
    """{replica_id: [device_id, ...]}, {replica_id: node} and {replica_id: model}, each replica's
    latest record."""
    replicas, replica_node, replica_model = {}, {}, {}
    for rid, node, devs, model in con.execute("""
        select replica_id, arg_max(node, valid_from), arg_max(device_ids, valid_from), arg_max(model, valid_from)
        from raw.replicas group by 1 order by 1
    """).fetchall():
        replicas[rid] = [d for d in devs if d]
        replica_node[rid] = node
        replica_model[rid] = model
    return replicas, replica_node, replica_model


def read_samples(con, first: dt.date, last: dt.date, lo_ts, hi_ts) -> tuple[dict, dict]:
    """{device_id: (t, power_w, counter_j, chip)} sorted by time, and {device_id: node}."""
    s = con.sql("""
        select device_id, chip, node, epoch_us(ts) / 1e6 as t, power_w, energy_counter_j
        from raw.device_samples where _date between ? and ? and ts >= ? and ts < ?
        order by device_id, ts
    """, params=[first, last, lo_ts, hi_ts]).to_arrow_table()
    samples, device_node = {}, {}
    if not s.num_rows:
        return samples, device_node
    enc = pc.dictionary_encode(s["device_id"]).combine_chunks()
    codes = enc.indices.to_numpy()
    names = enc.dictionary.to_pylist()
    t = s["t"].to_numpy()
    p = s["power_w"].to_numpy(zero_copy_only=False).astype(np.float64)
    c = s["energy_counter_j"].to_numpy(zero_copy_only=False).astype(np.float64)
    for a, b in _groups(codes):
        samples[names[codes[a]]] = (t[a:b], p[a:b], c[a:b], s["chip"][a].as_py())
        device_node[names[codes[a]]] = s["node"][a].as_py()
    return samples, device_node


def request_replicas(con, args: list) -> list[str]:
    """Replicas with requests overlapping the window."""
    return [r[0] for r in con.execute(
        f"select distinct replica_id from raw.requests where {OVERLAP} order by 1", args).fetchall()]


def read_requests(con, rid: str, args: list):
    """One replica's requests overlapping the window: (ids, {s, f, e, c} arrays sorted by s)."""
    r = con.sql(f"""
        select request_id,
               epoch_us(coalesce(scheduled_ts, arrival_ts)) / 1e6 as s,
               epoch_us(coalesce(first_token_ts, finish_ts)) / 1e6 as f,
               epoch_us(finish_ts) / 1e6 as e, completion_tokens::double as c
        from raw.requests where replica_id = ? and {OVERLAP}
        order by s, request_id
    """, params=[rid, *args]).to_arrow_table()
    return r["request_id"].combine_chunks(), {k: r[k].to_numpy().astype(np.float64) for k in ("s", "f", "e", "c")}
