"""Issue 19, class 7: node names starting with "." are loaded, and keep their real name.

The spool writer maps a leading dot in a path component (collectors.names.path_component), so
its files are not hidden; an older writer's hidden ``.name.parquet`` files and ``node=.x``
directories are listed and loaded too. Only the writer's temporary files (``*.tmp``) are skipped.
"""
from __future__ import annotations

from collectors.spool import write_partition
from tests.ingest_builders import put_raw, q, replicas, requests, samples
from warehouse.ingest.load import connect, load_spool
from warehouse.ingest.scan import scan_spool


def test_a_dot_node_written_by_the_spool_writer_is_loaded_under_its_real_name(tmp_path):
    spool = tmp_path / "spool"
    path = write_partition(spool, "device_samples", "2026-10-01", ".mi300", samples(device=".mi300/0", node=".mi300"),
                           name=".mi300")
    assert not any(part.startswith(".") for part in path.relative_to(spool).parts)
    write_partition(spool, "replicas", "2026-10-01", ".mi300",
                    replicas(replica=".rep", node=".mi300", devices=[".mi300/0"]), name=".mi300-replicas")
    write_partition(spool, "requests", "2026-10-01", ".mi300", requests(node=".mi300", replica=".rep"), name=".mi300")
    con = connect(tmp_path / "w.duckdb")
    rep = load_spool(con, spool)
    assert rep.files_loaded == 3 and sum(rep.rows_quarantined.values()) == 0
    assert q(con, "select distinct node, device_id from raw.device_samples") == [(".mi300", ".mi300/0")]
    assert q(con, "select count(*), min(replica_id) from raw.requests") == [(50, ".rep")]
    assert q(con, "select device_ids from raw.replicas") == [([".mi300/0"],)]
    con.close()


def test_hidden_files_and_directories_of_an_old_writer_are_loaded_but_temporary_files_are_not(tmp_path):
    spool = tmp_path / "spool"
    hidden = put_raw(spool, "device_samples/date=2026-10-01/node=.x/.x.parquet", samples(device=".x/0", node=".x", n=30))
    plain = put_raw(spool, "device_samples/date=2026-10-01/node=y/.y.parquet", samples(device="y/0", node="y", n=20))
    tmp = spool / "device_samples/date=2026-10-01/node=y/.y.parquet.0123abcd.tmp"
    tmp.write_bytes((spool / plain).read_bytes())  # a writer's half-done temporary file
    assert {f.rel for f in scan_spool(spool)} == {hidden, plain}
    con = connect(tmp_path / "w.duckdb")
    rep = load_spool(con, spool)
    assert rep.files_loaded == 2
    assert dict(q(con, "select node, count(*) from raw.device_samples group by 1")) == {".x": 30, "y": 20}
    assert q(con, "select file, status from raw.manifest order by 1") == [(hidden, "loaded"), (plain, "loaded")]
    con.close()
