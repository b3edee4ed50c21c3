"""Issue 19, class 9: a request whose replica_id is unknown is quarantined, and the run goes on.

The loader checks the reference before dbt: such a request goes to raw.quarantine (field
``replica_id``, reason ``unknown replica``, the replica's id as the value); the other requests
load. When the replica's layout arrives later, the quarantined requests are loaded then. The full
pipeline (attribution, dbt build with its not-null tests, site) succeeds with such a request.
"""
from __future__ import annotations

import pyarrow as pa
import pytest

from tests.ingest_builders import T0, put, q, replicas, requests
from warehouse.ingest.load import connect, load_spool


def test_requests_naming_an_unknown_replica_are_quarantined_and_load_once_it_arrives(tmp_path):
    spool = tmp_path / "spool"
    put(spool, "replicas", "rep", replicas())
    good = put(spool, "requests", "good", requests(n=30))
    ghost = put(spool, "requests", "ghost", requests(n=5, prefix="g", replica="ghost-7"))
    mixed = requests(n=4, prefix="m")
    mixed = mixed.set_column(2, "replica_id", pa.array(["rep1", "nope", "rep1", "nope"]))
    mix = put(spool, "requests", "mixed", mixed)
    con = connect(tmp_path / "w.duckdb")
    rep = load_spool(con, spool)
    assert rep.files_loaded == 4 and rep.files_failed == 0
    assert dict(q(con, "select _file, count(*) from raw.requests group by 1")) == {good: 30, mix: 2}
    assert q(con, "select file, row, field, reason, value from raw.quarantine order by file, row") == (
        [(ghost, i, "replica_id", "unknown replica", "ghost-7") for i in range(5)]
        + [(mix, 1, "replica_id", "unknown replica", "nope"), (mix, 3, "replica_id", "unknown replica", "nope")])
    # the missing layout arrives late: the requests that named it load, exactly once
    put(spool, "replicas", "ghost", replicas(replica="ghost-7", devices=["n1/1"], t=T0 + 1))
    load_spool(con, spool)
    load_spool(con, spool)
    assert dict(q(con, "select _file, count(*) from raw.requests group by 1")) == {good: 30, mix: 2, ghost: 5}
    assert q(con, "select value from raw.quarantine order by row") == [("nope",), ("nope",)]
    assert q(con, "select status, rows, rows_quarantined from raw.manifest where file = ?", [ghost]) == [
        ("loaded", 5, 0)]
    con.close()


@pytest.mark.slow
def test_the_pipeline_runs_through_dbt_with_a_request_of_an_unknown_replica(tmp_path):
    from collectors.sim.simulate import simulate
    from pipelines.cli import run_pipeline

    home = tmp_path / "home"
    simulate("tiny", home, "2026-10-01", 1, 30.0, 5, progress=False)
    put(home / "spool", "requests", "stray", requests(n=3, prefix="stray-", replica="no-such-replica",
                                                      node="h100-0"), node="h100-0")
    result = run_pipeline(home, raise_on_error=True)
    assert result.success
    con = connect(home / "warehouse.duckdb", read_only=True)
    assert q(con, "select count(*), min(value) from raw.quarantine where reason = 'unknown replica'") == [
        (3, "no-such-replica")]
    assert q(con, "select count(*) from marts.fct_request_energy where request_id like 'stray-%'") == [(0,)]
    con.close()
