"""Issue 19, the identifier policy at load: node, device, replica and model names that
collectors.names.name_problem refuses go to raw.quarantine with the reason, file, row and field;
every other row of the file loads, and names the policy accepts (any separator, quote, glob or
HTML character) are kept exactly as given.
"""
from __future__ import annotations

import pyarrow as pa

from collectors.names import MAX_LEN, name_problem
from tests.ingest_builders import put, q, replicas, requests, samples
from warehouse.ingest.load import connect, load_spool


def _with(table: pa.Table, col: str, values: list) -> pa.Table:
    return table.set_column(table.schema.get_field_index(col), col, pa.array(values, table.schema.field(col).type))


def test_refused_names_are_quarantined_per_row_and_accepted_ones_kept(tmp_path):
    spool = tmp_path / "spool"
    long = "n" * (MAX_LEN + 1)
    nodes = ["n1", "bell\x07", "n1", " padded", "n1", "<img src=x onerror=alert(1)>", "n1", "a'b;--"]
    s = _with(samples(n=8), "node", nodes)
    s = _with(s, "device_id", ["n1/0", "n1/0", long, "n1/0", "n1/0", "n1/0", "n1/0", "n1/0"])
    srel = put(spool, "device_samples", "s", s)
    put(spool, "replicas", "rep", replicas())
    r = _with(requests(n=4), "model", ["llama-8b", "tab\tmodel", "llama-8b", "m\x00"])
    rrel = put(spool, "requests", "r", r)
    con = connect(tmp_path / "w.duckdb")
    rep = load_spool(con, spool)
    got = q(con, "select file, row, field, reason, value from raw.quarantine order by file, row")
    assert got == [
        (srel, 1, "node", "invalid name: contains a control character", "bell\x07"),
        (srel, 2, "device_id", f"invalid name: longer than {MAX_LEN} characters", long),
        (srel, 3, "node", "invalid name: leading or trailing whitespace", " padded"),
        (rrel, 1, "model", f"invalid name: {name_problem('tab' + chr(9) + 'model')}", "tab\tmodel"),
        (rrel, 3, "model", f"invalid name: {name_problem('m' + chr(0))}", "m\x00"),
    ]
    assert rep.rows_loaded == {"replicas": 1, "device_samples": 5, "requests": 2}
    assert sorted(r[0] for r in q(con, "select distinct node from raw.device_samples")) == [
        "<img src=x onerror=alert(1)>", "a'b;--", "n1"]
    con.close()


def test_a_refused_device_in_a_replica_list_quarantines_that_replica(tmp_path):
    spool = tmp_path / "spool"
    put(spool, "replicas", "good", replicas(replica="ok", devices=["n1/0", "n1/1,2"]))
    bad = put(spool, "replicas", "bad", replicas(replica="broken", devices=["n1/3", "n1/\n4"]))
    con = connect(tmp_path / "w.duckdb")
    load_spool(con, spool)
    assert q(con, "select replica_id, device_ids from raw.replicas") == [("ok", ["n1/0", "n1/1,2"])]
    assert q(con, "select file, row, field, reason, value from raw.quarantine") == [
        (bad, 0, "device_ids", "invalid name: contains a control character", "n1/\n4")]
    con.close()
