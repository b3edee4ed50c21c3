"""Issue 19, class 1: glob characters in spool file and directory names.

A listed name is opened as exactly that path: a file named ``h*.parquet`` (or ``[a].parquet``,
``?.parquet``) must not pull in the rows of the other files its pattern matches, so no row is read
twice and no good row is quarantined as a duplicate; a changed file replaces exactly its own rows.
"""
from __future__ import annotations

import pytest

from tests.ingest_builders import T0, put, put_raw, q, samples
from warehouse.ingest.load import connect, load_spool


@pytest.fixture
def wh(tmp_path):
    spool = tmp_path / "spool"
    con = connect(tmp_path / "w.duckdb")
    yield spool, con
    con.close()


def _per_file(con):
    return dict(q(con, "select _file, count(*) from raw.device_samples group by 1"))


def test_a_file_named_like_a_glob_reads_only_itself_and_a_rerun_repairs(wh):
    spool, con = wh
    real = put(spool, "device_samples", "h1", samples(device="n1/0", n=300))
    star = put(spool, "device_samples", "h*", samples(device="n1/1", n=20))  # matches h1.parquet too
    assert star.endswith("/h*.parquet")
    rep = load_spool(con, spool)
    assert rep.files_loaded == 2 and rep.batches == 1  # one batch of both files
    assert _per_file(con) == {real: 300, star: 20}
    assert dict(q(con, "select device_id, count(*) from raw.device_samples group by 1")) == {"n1/0": 300, "n1/1": 20}
    assert q(con, "select count(*) from raw.quarantine") == [(0,)]
    assert q(con, "select file, rows, rows_quarantined from raw.manifest order by file") == [
        (star, 20, 0), (real, 300, 0)]
    # the glob-named file changes: a rerun replaces its rows and only its rows
    put(spool, "device_samples", "h*", samples(device="n1/1", n=7, start=T0 + 5000))
    rep = load_spool(con, spool)
    assert rep.files_replaced == 1 and rep.files_loaded == 1
    assert _per_file(con) == {real: 300, star: 7}
    assert q(con, "select count(*) from raw.quarantine") == [(0,)]


def test_brackets_and_question_marks_in_file_and_directory_names(wh):
    spool, con = wh
    files = {
        put(spool, "device_samples", "a", samples(device="n1/0", n=40)): 40,
        put_raw(spool, "device_samples/date=2026-10-01/node=n1/[a].parquet", samples(device="n1/1", n=11)): 11,
        put_raw(spool, "device_samples/date=2026-10-01/node=n1/?.parquet", samples(device="n1/2", n=12)): 12,
        # a directory an old writer named with glob characters, holding a file that matches others
        put_raw(spool, "device_samples/date=2026-10-01/node=n*/**.parquet", samples(device="n9/0", node="n*", n=13)): 13,
    }
    rep = load_spool(con, spool, batch_rows=10**6)
    assert rep.files_loaded == 4
    assert _per_file(con) == files
    assert q(con, "select count(*), count(distinct (device_id, ts)) from raw.device_samples") == [(76, 76)]
    assert q(con, "select count(*) from raw.quarantine") == [(0,)]
    assert q(con, "select node from raw.device_samples where device_id = 'n9/0' limit 1") == [("n*",)]
    # and nothing is read twice on a second load
    rep = load_spool(con, spool)
    assert rep.files_skipped == 4 and rep.batches == 0
