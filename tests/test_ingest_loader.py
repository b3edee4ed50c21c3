"""The loader: exactly-once files, replaced files, validation with quarantine, unreadable files,
pending days without loading, and the pure helpers the pipeline uses."""
from __future__ import annotations

import datetime as dt
import os
import shutil

import duckdb
import numpy as np
import pyarrow as pa
import pytest

from collectors.schema import DEVICE_SAMPLES, REQUESTS
from collectors.spool import partition_dir, write_atomic
from tests.ingest_builders import T0, put, q, replicas, requests, samples
from warehouse.ingest.days import file_dates, pending_dates
from warehouse.ingest.manifest import pending
from warehouse.ingest.scan import scan_spool
from warehouse.ingest.window import date_ranges, dbt_window_vars
from warehouse.ingest.checksum import table_checksums
from warehouse.ingest.load import connect, load_spool


@pytest.fixture
def wh(tmp_path):
    spool = tmp_path / "spool"
    spool.mkdir()
    con = connect(tmp_path / "w.duckdb")
    yield spool, con
    con.close()


def test_a_file_delivered_twice_is_loaded_once(wh):
    spool, con = wh
    rel = put(spool, "device_samples", "a", samples())
    load_spool(con, spool)
    # delivered again under another name (byte-identical), and the same file touched
    shutil.copyfile(spool / rel, spool / rel.replace("a.parquet", "a-again.parquet"))
    os.utime(spool / rel, None)
    rep = load_spool(con, spool)
    assert rep.files_duplicate == 1 and rep.files_loaded == 0
    assert q(con, "select count(*), count(distinct ts) from raw.device_samples") == [(100, 100)]
    assert q(con, "select status, count(*) from raw.manifest group by 1 order by 1") == [("duplicate", 1), ("loaded", 1)]
    # a third load reads nothing: fingerprints match
    rep = load_spool(con, spool)
    assert rep.files_skipped == 2 and rep.batches == 0
    # two byte-identical deliveries in the same load: the first delivered (older) is loaded
    put(spool, "replicas", "rep", replicas())  # requests must name a known replica
    put(spool, "requests", "late", requests())
    p2 = spool / "requests/date=2026-10-01/node=n1/copy.parquet"
    shutil.copyfile(spool / "requests/date=2026-10-01/node=n1/late.parquet", p2)
    os.utime(p2, ns=(os.stat(p2).st_mtime_ns + 10**9,) * 2)
    rep = load_spool(con, spool)
    assert rep.files_duplicate == 1
    assert q(con, "select count(*), count(distinct request_id), min(_file) from raw.requests") == [
        (50, 50, "requests/date=2026-10-01/node=n1/late.parquet")]


def test_a_changed_file_replaces_its_rows_without_duplicates(wh):
    spool, con = wh
    rel = put(spool, "device_samples", "a", samples(n=100, power_w=np.r_[np.full(99, 300.0), -5.0]))
    put(spool, "device_samples", "b", samples(device="n1/1", n=10))
    load_spool(con, spool)
    assert q(con, "select count(*) from raw.quarantine where file = ?", [rel]) == [(1,)]
    q(con, "delete from raw.dirty_days")
    # the same file, fixed and shorter: its old rows and quarantine go, the new ones come in
    write_atomic(samples(n=60, power_w=np.full(60, 400.0)), spool / rel)
    rep = load_spool(con, spool)
    assert rep.files_replaced == 1 and rep.files_loaded == 1
    assert q(con, "select count(*), count(distinct ts), min(power_w), max(power_w) from raw.device_samples "
                  "where _file = ?", [rel]) == [(60, 60, 400.0, 400.0)]
    assert q(con, "select count(*) from raw.device_samples where device_id = 'n1/1'") == [(10,)]
    assert q(con, "select count(*) from raw.quarantine where file = ?", [rel]) == [(0,)]
    assert [str(r[0]) for r in q(con, "select date from raw.dirty_days")] == ["2026-10-01"]
    # reloading changes nothing
    before = table_checksums(con, ["raw.device_samples", "raw.quarantine"])
    load_spool(con, spool)
    assert table_checksums(con, ["raw.device_samples", "raw.quarantine"]) == before


def test_extra_missing_and_mistyped_columns_are_handled_per_file(wh):
    spool, con = wh
    good = samples(n=20)
    extra = samples(device="n1/1", n=20).append_column("fan_rpm", pa.array(np.full(20, 3000.0)))
    no_optional = samples(device="n1/2", n=20).drop(["temperature_c", "sm_clock_mhz"])
    no_required = samples(device="n1/3", n=20).drop(["device_id"])
    power = pa.array([str(300.0 + i) if i % 5 else "n/a" for i in range(20)])  # strings, 4 of them garbage
    mistyped = samples(device="n1/4", n=20).set_column(7, "power_w", power)
    ints_as_floats = samples(device="n1/5", n=20).set_column(3, "device_index", pa.array(np.zeros(20)))
    files = {name: put(spool, "device_samples", name, t) for name, t in [
        ("good", good), ("extra", extra), ("no_optional", no_optional), ("no_required", no_required),
        ("mistyped", mistyped), ("floats", ints_as_floats)]}
    rep = load_spool(con, spool)
    assert rep.files_rejected == 1 and rep.files_loaded == 5
    by_dev = dict(q(con, "select device_id, count(*) from raw.device_samples group by 1"))
    assert by_dev == {"n1/0": 20, "n1/1": 20, "n1/2": 20, "n1/4": 16, "n1/5": 20}
    assert q(con, "select count(*) from raw.device_samples where device_id = 'n1/2' and temperature_c is null") == [(20,)]
    assert q(con, "select min(power_w), max(power_w) from raw.device_samples where device_id = 'n1/4'") == [(301.0, 319.0)]
    assert q(con, "select row, field, reason, value from raw.quarantine where file = ? order by row",
             [files["mistyped"]]) == [(r, "power_w", "wrong type", "'n/a'") for r in (0, 5, 10, 15)]
    assert q(con, "select row, field, reason from raw.quarantine where file = ?", [files["no_required"]]) == [
        (-1, "device_id", "file lacks required column(s): device_id")]
    detail = q(con, "select detail from raw.manifest where file = ?", [files["extra"]])[0][0]
    assert "fan_rpm" in detail


def test_physical_bounds_and_timestamps_are_checked_row_by_row(wh):
    spool, con = wh
    n = 14
    power = np.full(n, 300.0)
    util = np.full(n, 50.0)
    t = T0 + 60 + np.arange(n) * 10.0
    power[1], power[2], power[3], power[4] = -1.0, 50_000.0, np.nan, np.inf
    util[5] = 101.0
    t[6] = dt.datetime.now(dt.timezone.utc).timestamp() + 3 * 86400  # future
    t[7] = dt.datetime(2010, 1, 1, tzinfo=dt.timezone.utc).timestamp()  # far past
    t[8] = T0 + 5 * 86400  # far outside its file's day
    t[10] = t[9]  # same device and timestamp as row 9
    ts = pa.array((t * 1e6).astype(np.int64)).cast(DEVICE_SAMPLES.field("ts").type)
    rel = put(spool, "device_samples", "s", samples(n=n, power_w=power, utilization_pct=util, ts=ts))
    reqs = requests(n=6, prompt_tokens=pa.array([10, -1, 10, 10, 10, 10], pa.int64()),
                    completion_tokens=pa.array([10, 10, -3, 10, 10, 10], pa.int64()))
    fin = reqs["finish_ts"].to_pylist()
    fin[3] = reqs["arrival_ts"][3].as_py() - dt.timedelta(seconds=1)
    reqs = reqs.set_column(reqs.schema.get_field_index("finish_ts"), "finish_ts", pa.array(fin, REQUESTS.field("finish_ts").type))
    rrel = put(spool, "requests", "r", reqs)
    put(spool, "replicas", "rep", replicas())  # requests must name a known replica
    rep = load_spool(con, spool)
    got = {(r[0], r[1]): r[2] for r in q(con, "select row, field, reason from raw.quarantine where file = ?", [rel])}
    assert got == {
        (1, "power_w"): "negative power", (2, "power_w"): "power above physical bound for chip",
        (3, "power_w"): "power not a finite number", (4, "power_w"): "power not a finite number",
        (5, "utilization_pct"): "utilization outside 0-100", (6, "ts"): "timestamp in the future",
        (7, "ts"): "timestamp too far in the past", (8, "ts"): "timestamp outside its file's date partition",
        (10, "key"): "duplicate within file",
    }
    assert rep.rows_loaded["device_samples"] == n - len(got)
    got = {(r[0], r[1]): r[2] for r in q(con, "select row, field, reason from raw.quarantine where file = ?", [rrel])}
    assert got == {(1, "prompt_tokens"): "negative token count", (2, "completion_tokens"): "negative token count",
                   (3, "finish_ts"): "finish before arrival"}
    assert q(con, "select count(*) from raw.requests") == [(3,)]


def test_duplicate_keys_across_files_and_loads_keep_the_first(wh):
    spool, con = wh
    put(spool, "device_samples", "a", samples(n=30))
    put(spool, "device_samples", "b", samples(n=40, power_w=np.full(40, 301.0)))  # 30 keys overlap a
    load_spool(con, spool)
    assert q(con, "select count(*), count(distinct ts) from raw.device_samples") == [(40, 40)]
    assert q(con, "select reason, count(*) from raw.quarantine group by 1") == [("duplicate of a row in another file", 30)]
    put(spool, "device_samples", "c", samples(n=50, power_w=np.full(50, 302.0)))  # 40 keys already loaded
    load_spool(con, spool)
    assert q(con, "select count(*), count(distinct ts) from raw.device_samples") == [(50, 50)]
    assert q(con, "select count(*) from raw.quarantine where reason = 'duplicate of a row already loaded'") == [(40,)]
    # a refused row never hides a good one with the same key
    bad_first = samples(device="n1/9", n=2, power_w=np.array([-1.0, 300.0]))
    bad_first = bad_first.set_column(0, "ts", pa.array([bad_first["ts"][0].as_py()] * 2, DEVICE_SAMPLES.field("ts").type))
    put(spool, "device_samples", "d", bad_first)
    load_spool(con, spool)
    assert q(con, "select power_w from raw.device_samples where device_id = 'n1/9'") == [(300.0,)]


def test_out_of_order_samples_attribute_like_sorted_ones(tmp_path):
    from warehouse.attribution.run import run_attribution_days

    sums = []
    for order in ("sorted", "shuffled"):
        spool = tmp_path / order / "spool"
        t = samples(n=2000, step=15.0)
        if order == "shuffled":
            t = t.take(np.random.default_rng(3).permutation(t.num_rows))
        put(spool, "device_samples", "a", t)
        put(spool, "replicas", "rep", replicas())
        put(spool, "requests", "r", requests(n=200))
        con = connect(tmp_path / order / "w.duckdb")
        load_spool(con, spool)
        run_attribution_days(con)
        sums.append(table_checksums(con, ["attribution.request_energy", "attribution.device_day"]))
        con.close()
    assert sums[0] == sums[1]


def test_unreadable_files_are_recorded_and_the_load_goes_on(wh):
    spool, con = wh
    good = put(spool, "device_samples", "good", samples())
    d = partition_dir(spool, "device_samples", "2026-10-01", "n1")
    (d / "garbage.parquet").write_bytes(os.urandom(3000))
    (d / "empty.parquet").write_bytes(b"")
    data = (spool / good).read_bytes()
    (d / "truncated.parquet").write_bytes(data[: len(data) // 2])
    put(spool, "device_samples", "other", samples(device="n1/1"))
    rep = load_spool(con, spool)
    status = dict(q(con, "select file, status from raw.manifest"))
    assert status[good] == "loaded" and status["device_samples/date=2026-10-01/node=n1/other.parquet"] == "loaded"
    for name in ("garbage", "empty", "truncated"):
        assert status[f"device_samples/date=2026-10-01/node=n1/{name}.parquet"] == "unreadable"
    assert q(con, "select count(*) from raw.device_samples where device_id in ('n1/0', 'n1/1')") == [(200,)]
    assert rep.files_unreadable >= 3
    assert q(con, "select count(*) from raw.quarantine where row = -1 and reason like 'unreadable file:%'")[0][0] >= 3


def test_pending_days_come_from_the_manifest_and_footers_without_loading(wh):
    spool, con = wh
    a = put(spool, "device_samples", "a", samples())
    put(spool, "requests", "r", requests())
    assert pending_dates(con, spool) == ["2026-10-01"]
    load_spool(con, spool)
    q(con, "delete from raw.dirty_days")
    assert pending_dates(con, spool) == [] and pending(con, spool) == []
    # a late file for an old day, a changed file, a copy of a loaded file
    late = put(spool, "requests", "late", requests(prefix="late", start=T0 - 86400 + 100), date="2026-09-30")
    shutil.copyfile(spool / a, spool / a.replace("a.parquet", "copy.parquet"))
    write_atomic(samples(n=10, start=T0 + 2 * 86400 + 5), partition_dir(spool, "device_samples", "2026-10-03", "n1") / "b.parquet")
    before = table_checksums(con, ["raw.device_samples", "raw.requests", "raw.manifest"])
    states = {p.file.rel: p.state for p in pending(con, spool)}
    assert states[late] == "new" and states[a.replace("a.parquet", "copy.parquet")] == "duplicate"
    assert pending_dates(con, spool) == ["2026-09-30", "2026-10-03"]
    assert table_checksums(con, ["raw.device_samples", "raw.requests", "raw.manifest"]) == before  # nothing loaded
    # a samples file whose clock runs into the next day touches both days
    f = [x for x in scan_spool(spool) if x.rel.endswith("b.parquet")][0]
    assert file_dates(spool, f) == {"2026-10-03"}
    skew = put(spool, "device_samples", "skew", samples(n=3, start=T0 + 86400 - 15), date="2026-10-01")
    f = [x for x in scan_spool(spool) if x.rel == skew][0]
    assert file_dates(spool, f) == {"2026-10-01", "2026-10-02"}


def test_window_helpers():
    assert date_ranges(["2026-10-03", "2026-10-01", "2026-10-02", "2026-10-07", "2026-10-02"]) == [
        ("2026-10-01", "2026-10-03"), ("2026-10-07", "2026-10-07")]
    assert date_ranges([]) == []
    assert dbt_window_vars("2026-10-01", "2026-10-03") == {"min_date": "2026-10-01", "max_date": "2026-10-03"}
    assert dbt_window_vars(dt.date(2026, 10, 1), "2026-10-01T00:00:00+00:00") == {
        "min_date": "2026-10-01", "max_date": "2026-10-01"}
    with pytest.raises(ValueError):
        dbt_window_vars("2026-10-02", "2026-10-01")


def test_load_window_only_reads_its_days(wh):
    spool, con = wh
    put(spool, "device_samples", "a", samples())
    put(spool, "device_samples", "b", samples(start=T0 + 86400 + 5), date="2026-10-02")
    rep = load_spool(con, spool, dates=("2026-10-02", "2026-10-02"))
    assert rep.files_loaded == 1 and rep.loaded_dates == {"2026-10-02"}
    assert pending_dates(con, spool) == ["2026-10-01", "2026-10-02"]  # 10-01 still new, 10-02 dirty


def test_a_failed_batch_is_retried_file_by_file_and_a_failing_file_does_not_block_others(wh, monkeypatch):
    import warehouse.ingest.load as loader

    spool, con = wh
    for i in range(4):
        put(spool, "device_samples", f"f{i}", samples(device=f"n1/{i}", n=10))

    real_stage = loader._stage_and_insert

    def broken_batch(con, spool, kind, batch, *a, **k):  # a batch of several files fails as a whole
        if len(batch) > 1:
            raise RuntimeError("simulated batch failure")
        return real_stage(con, spool, kind, batch, *a, **k)

    real_conform = loader.conform

    def picky_conform(table, kind):  # and one file fails even on its own
        if table.num_rows and table["device_id"][0].as_py() == "n1/2":
            raise RuntimeError("simulated file failure")
        return real_conform(table, kind)

    monkeypatch.setattr(loader, "_stage_and_insert", broken_batch)
    monkeypatch.setattr(loader, "conform", picky_conform)
    rep = load_spool(con, spool)
    assert rep.files_loaded == 3 and rep.files_failed == 1
    assert q(con, "select count(*) from raw.device_samples") == [(30,)]
    assert q(con, "select status from raw.manifest where file like '%f2.parquet'") == [("error",)]
    assert q(con, "select reason from raw.quarantine where file like '%f2.parquet'")[0][0].startswith("load failed")
    # a failed file is retried by the next load, and then loads
    monkeypatch.setattr(loader, "conform", real_conform)
    rep = load_spool(con, spool)
    assert rep.files_loaded == 1 and rep.files_skipped == 3
    assert q(con, "select count(*), count(distinct device_id) from raw.device_samples") == [(40, 4)]
    assert q(con, "select count(*) from raw.quarantine") == [(0,)]


def test_a_copy_loads_in_its_own_right_once_its_original_changes(wh):
    spool, con = wh
    a = put(spool, "device_samples", "a", samples(n=20))
    load_spool(con, spool)
    shutil.copyfile(spool / a, spool / a.replace("a.parquet", "b.parquet"))
    assert load_spool(con, spool).files_duplicate == 1
    write_atomic(samples(n=20, start=T0 + 10_000), spool / a)  # the original now holds other rows
    load_spool(con, spool)
    load_spool(con, spool)
    assert q(con, "select _file, count(*) from raw.device_samples group by 1 order by 1") == [
        (a, 20), (a.replace("a.parquet", "b.parquet"), 20)]
    assert q(con, "select count(*) from raw.device_samples") == [(40,)]


def test_table_checksums_see_any_row_change_but_not_the_last_bit_of_a_parallel_sum():
    con = duckdb.connect()
    con.execute("create table t (id varchar, n integer, x double)")
    con.execute("insert into t values ('a', 1, 0.1), ('b', 2, 1e6), ('c', 3, 2.5)")
    base = table_checksums(con, ["t"])["t"]

    con_rows = con.execute("select * from t").fetchall()

    def variant(rows):
        c = duckdb.connect()
        c.execute("create table t (id varchar, n integer, x double)")
        c.executemany("insert into t values (?, ?, ?)", rows)
        return table_checksums(c, ["t"])["t"]

    assert variant(list(reversed(con_rows))) == base  # order does not matter
    last_bit = [(i, n, float(np.nextafter(x, np.inf))) for i, n, x in con_rows]
    assert variant(last_bit) == base  # one ulp is the noise of a parallel sum
    assert variant([("a", 1, 0.1), ("b", 2, 1e6), ("c", 3, 2.5001)]) != base  # a value changed
    assert variant([("a", 1, 2.5), ("b", 2, 1e6), ("c", 3, 0.1)]) != base  # values swapped rows
    assert variant([("a", 1, 0.1), ("b", 2, 1e6), ("d", 3, 2.5)]) != base  # a key changed
    assert variant(con_rows[:2]) != base  # a row lost


def test_a_request_may_last_one_day_but_not_one_microsecond_more(wh):
    spool, con = wh
    reqs = requests(n=3)
    a = reqs["arrival_ts"].cast(pa.int64()).to_numpy()
    fin = a + np.array([86_400_000_000, 86_400_000_001, 5_000_000])
    reqs = reqs.set_column(reqs.schema.get_field_index("finish_ts"), "finish_ts",
                           pa.array(fin).cast(REQUESTS.field("finish_ts").type))
    rrel = put(spool, "requests", "r", reqs)
    put(spool, "replicas", "rep", replicas())
    load_spool(con, spool)
    assert q(con, "select row, field, reason from raw.quarantine where file = ?", [rrel]) == [
        (1, "finish_ts", "request lasts more than a day")]
    assert q(con, "select request_id from raw.requests order by 1") == [("r0",), ("r2",)]
