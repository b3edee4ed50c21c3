"""Issue 19, class 5: a separator in a node or device name must not change its energy.

Device lists are stored as lists (spool schema ``list<string>``, ``raw.replicas.device_ids
VARCHAR[]``, dbt staging, attribution) and never joined or split on a character a name may hold.
A fleet whose names contain commas (and other separators) attributes exactly like the same fleet
with plain names: every device's energy lands on its requests, none becomes "unused".
"""
from __future__ import annotations

import pyarrow as pa

from tests.ingest_builders import T0, put, put_raw, q, replicas, requests, samples, ts
from warehouse.attribution.run import run_attribution_days
from warehouse.ingest.load import connect, load_spool


def _fleet(base, node: str, devices: list[str]):
    """Load and attribute one node with two devices serving one replica; returns the warehouse."""
    spool = base / "spool"
    for i, dev in enumerate(devices):
        put(spool, "device_samples", f"d{i}", samples(device=dev, node=node, n=700), node=node)
    put(spool, "replicas", "rep", replicas(replica=f"{node}:rep", node=node, devices=devices), node=node)
    put(spool, "requests", "r", requests(n=120, node=node, replica=f"{node}:rep"), node=node)
    con = connect(base / "w.duckdb")
    rep = load_spool(con, spool)
    assert sum(rep.rows_quarantined.values()) == 0
    run_attribution_days(con)
    return con


def _energy(con):
    per_request = q(con, "select request_id, sum(energy_j) from attribution.request_energy group by 1 order by 1")
    devices = q(con, """select sum(measured_energy_j), sum(unused_j), sum(attributed_active_j + shared_idle_j)
                        from attribution.device_day""")[0]
    return per_request, devices


def _same_as_plain(tmp_path, node, devices):
    plain = _fleet(tmp_path / "plain", "mi300", ["mi300/0", "mi300/1"])
    hostile = _fleet(tmp_path / "hostile", node, devices)
    (p_req, p_dev), (h_req, h_dev) = _energy(plain), _energy(hostile)
    assert len(h_req) == 120 and all(e > 0 for _, e in h_req)
    assert [round(e, 6) for _, e in h_req] == [round(e, 6) for _, e in p_req]
    assert [round(x, 6) for x in h_dev] == [round(x, 6) for x in p_dev]
    # the devices' energy while serving lands on the requests (not on "unused"): 120 requests of 5 s
    # over ~7,000 s keep a device busy ~8.6 % of the time, and idle is shared only while serving
    assert h_dev[2] > 0.05 * h_dev[0]
    assert abs(sum(e for _, e in h_req) - h_dev[2]) < 1e-6 * h_dev[0]
    assert q(hostile, "select device_ids from raw.replicas") == [(devices,)]
    plain.close()
    hostile.close()


def test_a_comma_in_the_node_name_keeps_its_energy(tmp_path):
    _same_as_plain(tmp_path, "mi,300", ["mi,300/0", "mi,300/1"])


def test_other_separators_in_device_names_keep_their_energy(tmp_path):
    _same_as_plain(tmp_path, "rack;7|a b", ["rack;7|a b/0,1", "rack;7|a b/[1];x'y"])


def test_an_old_spool_file_with_a_comma_separated_device_list_still_loads(tmp_path):
    spool = tmp_path / "spool"
    old = pa.table({"replica_id": ["rep1"], "node": ["n1"], "model": ["m"], "chip": ["nvidia-h100-sxm"],
                    "device_ids": ["n1/0,n1/1"], "valid_from": ts([T0])})  # the former string column
    put_raw(spool, "replicas/date=2026-10-01/node=n1/old.parquet", old)
    con = connect(tmp_path / "w.duckdb")
    load_spool(con, spool)
    assert q(con, "select device_ids from raw.replicas") == [(["n1/0", "n1/1"],)]
    con.close()


def test_a_warehouse_with_string_device_lists_is_migrated(tmp_path):
    import duckdb

    db = tmp_path / "old.duckdb"
    old = duckdb.connect(str(db))
    old.execute("create schema raw")
    old.execute("""create table raw.replicas (replica_id varchar, node varchar, model varchar, chip varchar,
                   device_ids varchar, valid_from timestamptz, _file varchar, _row bigint, _date date,
                   _loaded_at timestamptz)""")
    old.execute("insert into raw.replicas values ('r', 'n1', 'm', 'c', 'n1/0,n1/1', now(), 'f', 0, null, now())")
    old.close()
    con = connect(db)
    assert q(con, "select device_ids from raw.replicas") == [(["n1/0", "n1/1"],)]
    con.close()
