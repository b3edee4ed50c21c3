"""Done-when tests with the `chaos` preset: `tokenwatt run` loads every good row exactly once,
quarantines every injected bad row with its reason, does not stop, is idempotent; a late file for
an old day makes the sensor re-run that day's partitions only, and the marts end up as if the file
had been on time."""
from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

pytestmark = pytest.mark.slow

START, DAYS = "2026-10-01", 2
TABLES = ["raw.device_samples", "raw.requests", "raw.replicas", "raw.quarantine",
          "attribution.request_energy", "attribution.device_day",
          "marts.fct_request_energy", "marts.fct_device_energy_daily", "marts.fct_cost_per_token_daily",
          "marts.fct_device_power_hourly", "marts.fct_pnl_daily", "marts.fct_data_quality_daily"]


def checksums(home: Path) -> dict:
    from warehouse.ingest.checksum import table_checksums

    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        return table_checksums(con, TABLES)
    finally:
        con.close()


def faults(home: Path):
    return pq.read_table(home / "truth" / "faults.parquet").to_pylist()


def late_file(home: Path) -> Path:
    return home / "spool" / [f for f in faults(home) if f["fault"] == "late_file"][0]["file"]


@pytest.fixture(scope="module")
def sim(tmp_path_factory) -> Path:
    from collectors.sim.simulate import simulate

    home = tmp_path_factory.mktemp("chaos") / "sim"
    simulate("chaos", home, START, DAYS, 15.0, 21, progress=False)
    return home


@pytest.fixture(scope="module")
def clean(sim, tmp_path_factory):
    """The chaos spool, every file present, through `tokenwatt run` once."""
    from pipelines.cli import run_pipeline

    home = tmp_path_factory.mktemp("clean") / "home"
    shutil.copytree(sim, home)
    result = run_pipeline(home, raise_on_error=False)
    return home, result


def test_chaos_run_does_not_stop(clean):
    home, result = clean
    assert result.success
    checks = {(e.event_specific_data.asset_key.to_user_string(), e.event_specific_data.check_name):
              e.event_specific_data.passed
              for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"}
    for name in ("freshness_per_node", "completeness_per_device_day"):
        assert checks[("raw/device_samples", name)] is True
    assert checks[("raw/quarantine", "quarantine_rate")] is True
    assert checks[("attribution/device_day", "energy_conserved")] is True


def test_every_good_row_is_in_the_warehouse_exactly_once(clean):
    home, _ = clean
    spool = home / "spool"
    skip = {f["file"] for f in faults(home) if f["fault"] in ("duplicate_file", "truncated_file")}
    bad = {(f["file"], f["row"]) for f in faults(home) if f["fault"] == "bad_row"}
    bad |= {(_actual(spool, f), r) for f, r in bad}
    con = duckdb.connect()
    con.execute(f"attach '{home / 'warehouse.duckdb'}' as w (read_only)")
    try:
        _compare_rows(con, spool, skip, bad)
    finally:
        con.close()


def _compare_rows(con, spool, skip, bad):
    for kind, key in (("device_samples", "device_id || '@' || epoch_us(ts)"), ("requests", "request_id")):
        files = sorted(str(p) for p in (spool / kind).rglob("*.parquet")
                       if str(p.relative_to(spool)) not in skip)
        con.execute(f"""create or replace temp table expected as
            select {key} as k, substr(filename, {len(str(spool)) + 2}) as file, file_row_number as row
            from read_parquet(?, filename = true, file_row_number = true, hive_partitioning = false)""", [files])
        con.execute("create or replace temp table bad (file varchar, row bigint)")
        con.executemany("insert into bad values (?, ?)", [list(b) for b in bad])
        con.execute("delete from expected where (file, row) in (select (file, row) from bad)")
        n_expected, n_distinct = con.execute("select count(*), count(distinct k) from expected").fetchone()
        assert n_expected == n_distinct > 0  # the simulator writes each good row once
        n_raw, n_raw_distinct = con.execute(f"select count(*), count(distinct {key}) from w.raw.{kind}").fetchone()
        assert n_raw == n_raw_distinct == n_expected, kind
        missing = con.execute(f"select count(*) from (select k from expected except select {key} from w.raw.{kind})").fetchone()[0]
        assert missing == 0, kind


def _actual(spool: Path, rel: str) -> str:
    """The truth names bad request rows of the late file by the on-time name: map to the file on disk."""
    if (spool / rel).exists():
        return rel
    late = rel.replace(".parquet", "-late.parquet")
    return late if (spool / late).exists() else rel


def test_every_injected_bad_row_is_quarantined_with_its_reason(clean):
    home, _ = clean
    spool = home / "spool"
    truth = [f for f in faults(home) if f["fault"] == "bad_row"]
    assert len(truth) >= 12
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        q = {(r[0], r[1]): (r[2], r[3]) for r in con.execute(
            "select file, row, field, reason from raw.quarantine where row >= 0").fetchall()}
        status = dict(con.execute("select file, status from raw.manifest").fetchall())
    finally:
        con.close()
    for f in truth:
        assert q.get((_actual(spool, f["file"]), f["row"])) == (f["field"], f["detail"]), f
    assert len(q) == len(truth)  # and nothing else was refused
    for f in faults(home):
        if f["fault"] == "duplicate_file":
            assert status[f["file"]] == "duplicate"
        elif f["fault"] == "truncated_file":
            assert status[f["file"]] == "unreadable"
        elif f["fault"] == "late_file":
            assert status[f["file"]] == "loaded"


def test_ingest_checks_fail_loudly_past_their_thresholds(clean):
    from warehouse.ingest.checks import completeness_by_device_day, freshness_by_node, quarantine_rate

    home, _ = clean
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        # the lost device's 20 minutes: 98.6 % of its day
        comp = completeness_by_device_day(con, START, "2026-10-02", 0.99)
        assert not comp["passed"] and [s[0] for s in comp["short"]] == ["h100-0/4"]
        assert completeness_by_device_day(con, START, "2026-10-02", 0.95)["passed"]
        assert not freshness_by_node(con, 1.0, "data")["passed"]  # nodes end seconds apart
        assert freshness_by_node(con, 900.0, "data")["passed"]
        assert not freshness_by_node(con, 900.0, "now")["passed"]  # the data is weeks old
        assert not quarantine_rate(con, START, "2026-10-02", 1e-6)["passed"]
    finally:
        con.close()


def test_running_twice_gives_the_same_tables(clean):
    from pipelines.cli import run_pipeline

    home, _ = clean
    before = checksums(home)
    assert run_pipeline(home, raise_on_error=False).success
    assert checksums(home) == before


def test_a_late_file_reruns_only_its_day_and_the_marts_follow(sim, clean, tmp_path):
    import dagster as dg

    from pipelines.cli import run_pipeline
    from pipelines.definitions import build_definitions
    from pipelines.ingest import PARTITIONED_JOB

    home = tmp_path / "home"
    shutil.copytree(sim, home)
    late = late_file(home)
    held = tmp_path / late.name
    shutil.move(late, held)  # the file has not arrived yet
    assert run_pipeline(home, raise_on_error=False).success

    def per_day():
        con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
        try:
            return {str(r[0]): r[1:] for r in con.execute("""
                select date, count(*), sum(energy_j), sum(cost_usd) from marts.fct_request_energy group by 1""").fetchall()}
        finally:
            con.close()

    before = per_day()
    defs = build_definitions(str(home))
    instance = dg.DagsterInstance.ephemeral()
    sensor = defs.get_sensor_def("spool_sensor")
    assert isinstance(sensor(dg.build_sensor_context(instance=instance, definitions=defs)), dg.SkipReason)

    shutil.move(held, late)  # ... and now it has, days late
    requests = sensor(dg.build_sensor_context(instance=instance, definitions=defs))
    assert [(r.tags["dagster/asset_partition_range_start"], r.tags["dagster/asset_partition_range_end"])
            for r in requests] == [(START, START)]
    result = defs.get_job_def(PARTITIONED_JOB).execute_in_process(
        instance=instance, tags=requests[0].tags, raise_on_error=False)
    assert result.success
    mats = {(e.event_specific_data.materialization.asset_key.to_user_string(),
             e.event_specific_data.materialization.partition)
            for e in result.all_events if e.event_type_value == "ASSET_MATERIALIZATION"}
    partitions = {p for _k, p in mats if p is not None}
    assert partitions == {START}  # the attribution re-ran for the late day only
    assert {k for k, p in mats if p is not None} == {"attribution/request_energy", "attribution/device_day",
                                                     "attribution/clock_skew", "attribution/power_model"}
    raw_meta = [e.event_specific_data.materialization.metadata for e in result.all_events
                if e.event_type_value == "ASSET_MATERIALIZATION"
                and e.event_specific_data.materialization.asset_key.to_user_string() == "raw/requests"][0]
    assert raw_meta["window"].value == f"{START}..{START}" and raw_meta["files_loaded"].value == 1

    after = per_day()
    n_late = pq.ParquetFile(late).metadata.num_rows
    n_bad = sum(1 for f in faults(home) if f["fault"] == "bad_row" and f["file"].startswith("requests/")
                and f["node"] == late.parent.name.split("=")[1])
    assert after[START][0] == before[START][0] + n_late - n_bad  # the late requests are in the marts
    assert after[START][1] > before[START][1]
    for day in before:
        if day != START:  # other days untouched (sums compared to the last bits of a parallel sum)
            assert after[day][0] == before[day][0]
            assert after[day][1:] == pytest.approx(before[day][1:], rel=1e-12)
    assert checksums(home) == checksums(clean[0])  # as if the file had been on time
    assert isinstance(sensor(dg.build_sensor_context(instance=instance, definitions=defs)), dg.SkipReason)
