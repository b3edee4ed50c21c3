"""Issue 19, class 8: symbolic links in the spool are refused, visibly, and orphan nothing.

Rows are only ever stored under the path the manifest records. A symbolic link is not followed
(its target may be outside the spool, or another spool file): it gets a ``rejected`` manifest
entry and a quarantine row saying why, and contributes no rows. Replacing the link by a regular
file loads that file; replacing a loaded file by a link removes the file's rows.
"""
from __future__ import annotations

import os

from tests.ingest_builders import put, q, samples
from warehouse.ingest.load import SYMLINK_REASON, connect, load_spool


def _state(con):
    return {
        "rows": dict(q(con, "select _file, count(*) from raw.device_samples group by 1")),
        "manifest": {r[0]: r[1:] for r in q(con, "select file, status, rows from raw.manifest")},
        "quarantine": q(con, "select file, row, reason from raw.quarantine order by file"),
    }


def test_a_link_to_a_file_outside_the_spool_is_refused_and_a_real_file_in_its_place_loads(tmp_path):
    spool = tmp_path / "spool"
    outside = put(tmp_path / "elsewhere", "device_samples", "real", samples(device="n1/7", n=40))
    good = put(spool, "device_samples", "good", samples(n=25))
    link = spool / "device_samples/date=2026-10-01/node=n1/link.parquet"
    link.symlink_to(tmp_path / "elsewhere" / outside)
    rel = link.relative_to(spool).as_posix()
    con = connect(tmp_path / "w.duckdb")
    rep = load_spool(con, spool)
    assert rep.files_rejected == 1 and rep.files_loaded == 1
    s = _state(con)
    assert s["rows"] == {good: 25}  # nothing stored under the link's target either
    assert s["manifest"][rel] == ("rejected", 0)
    assert s["quarantine"] == [(rel, -1, SYMLINK_REASON)]
    assert load_spool(con, spool).batches == 0  # refused once, not re-read on every load
    # the operator replaces the link by the file itself: it loads under its own path
    link.unlink()
    put(spool, "device_samples", "link", samples(device="n1/7", n=40))
    load_spool(con, spool)
    s = _state(con)
    assert s["rows"] == {good: 25, rel: 40} and s["manifest"][rel] == ("loaded", 40) and s["quarantine"] == []
    con.close()


def test_a_loaded_file_replaced_by_a_link_to_another_spool_file_leaves_no_rows_behind(tmp_path):
    spool = tmp_path / "spool"
    a = put(spool, "device_samples", "a", samples(device="n1/0", n=30))
    b = put(spool, "device_samples", "b", samples(device="n1/1", n=20))
    con = connect(tmp_path / "w.duckdb")
    load_spool(con, spool)
    assert _state(con)["rows"] == {a: 30, b: 20}
    pb = spool / b
    pb.unlink()
    os.symlink("a.parquet", pb)  # b now points at a: a's rows must not come in twice
    load_spool(con, spool)
    s = _state(con)
    assert s["rows"] == {a: 30}
    assert s["manifest"][b] == ("rejected", 0) and s["quarantine"] == [(b, -1, SYMLINK_REASON)]
    assert q(con, "select count(*), count(distinct (device_id, ts)) from raw.device_samples") == [(30, 30)]
    assert q(con, "select count(*) from raw.dirty_days where date = '2026-10-01'") == [(1,)]
    con.close()
