"""The real path end to end: simulator -> spool -> Dagster -> DuckDB -> dbt -> site."""
from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest

pytestmark = pytest.mark.slow


def _q(home: Path, sql: str):
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_every_chip_has_joules_per_token_and_marts_live_in_schema_marts(tiny_home):
    rows = _q(tiny_home, """
        select chip, sum(energy_j) / sum(prompt_tokens + completion_tokens)
        from marts.fct_request_energy group by chip order by chip
    """)
    assert [r[0] for r in rows] == ["amd-mi300x", "custom-asic", "nvidia-h100-sxm"]
    assert all(0.01 < r[1] < 20 for r in rows)
    schemas = {r[0] for r in _q(tiny_home, "select distinct table_schema from information_schema.tables")}
    assert "marts" in schemas and "main_marts" not in schemas


def test_every_request_is_attributed_once_with_cost(tiny_home):
    n_raw, n_mart, n_nulls, n_cost = _q(tiny_home, """
        select (select count(*) from raw.requests), count(*), count(*) filter (where energy_j is null),
               count(*) filter (where cost_usd > 0)
        from marts.fct_request_energy
    """)[0]
    assert n_raw == n_mart and n_nulls == 0 and n_cost > 0.99 * n_mart


def test_energy_is_conserved_on_every_device_day(tiny_home):
    worst = _q(tiny_home, """
        select max(abs(attributed_active_j + shared_idle_j + unused_j - measured_energy_j) / measured_energy_j),
               max(abs(attributed_active_j - request_side_active_j) / measured_energy_j),
               count(*)
        from marts.fct_device_energy_daily
    """)[0]
    assert worst[2] == 4 * 2  # 4 devices x 2 days
    assert worst[0] < 1e-6 and worst[1] < 1e-6


def test_attributed_energy_matches_ground_truth_in_aggregate(tiny_home):
    est, true = _q(tiny_home, f"""
        select sum(a.energy_j), sum(t.true_energy_j)
        from marts.fct_request_energy a
        join read_parquet('{tiny_home}/truth/requests/*/*/*.parquet', hive_partitioning=false) t using (request_id)
    """)[0]
    assert abs(est / true - 1) < 0.03


def test_site_pages_exist_and_carry_the_warehouse_figures(tiny_home):
    site = tiny_home / "site"
    pages = sorted(p.name for p in site.glob("*.html"))
    for name in ("index.html", "energy.html", "cost.html", "fleet.html"):
        assert name in pages
    html = (site / "index.html").read_text()
    for chip in ("nvidia-h100-sxm", "amd-mi300x", "custom-asic"):
        assert chip in html
    assert "cdn.jsdelivr" not in html and "https://" not in html.split("<body")[0]


def test_rerunning_the_pipeline_changes_nothing(tiny_home, tmp_path):
    from pipelines.cli import run_pipeline
    from warehouse.ingest.checksum import table_checksums

    tables = ["raw.device_samples", "raw.requests", "raw.quarantine", "attribution.request_energy",
              "marts.fct_request_energy", "marts.fct_device_energy_daily"]
    con = duckdb.connect(str(tiny_home / "warehouse.duckdb"), read_only=True)
    before = table_checksums(con, tables)
    con.close()
    assert run_pipeline(tiny_home).success
    con = duckdb.connect(str(tiny_home / "warehouse.duckdb"), read_only=True)
    after = table_checksums(con, tables)
    con.close()
    assert before == after


def test_dbt_conservation_test_fails_when_a_device_day_does_not_add_up(tiny_home, tmp_path):
    from pipelines.dbt_project import run_dbt

    broken = tmp_path / "broken"  # a home of its own: its own dbt profile and target, no environment
    broken.mkdir()
    shutil.copy(tiny_home / "warehouse.duckdb", broken / "warehouse.duckdb")
    con = duckdb.connect(str(broken / "warehouse.duckdb"))
    con.execute("""
        update attribution.device_day set unused_j = unused_j + 0.01 * measured_energy_j
        where device_id = (select min(device_id) from attribution.device_day)
    """)
    con.close()
    run = run_dbt(broken, "build", "--select", "+fct_device_energy_daily", check=False,
                  env={"PATH": "/usr/bin:/bin"}, capture_output=True, text=True)
    assert run.returncode != 0
    assert "energy_conserved_fct_device_energy_daily" in run.stdout
    assert "FAIL" in run.stdout
    assert str(broken / "warehouse.duckdb") in (broken / "dbt" / "profiles.yml").read_text()


def test_per_request_energy_tracks_ground_truth_request_by_request(tiny_home):
    # 10 s sampling on the tiny fleet: a shuffled or misaligned attribution would be far off
    median_ape, p95 = _q(tiny_home, f"""
        select median(abs(a.energy_j / t.true_energy_j - 1)), quantile_cont(abs(a.energy_j / t.true_energy_j - 1), 0.95)
        from marts.fct_request_energy a
        join read_parquet('{tiny_home}/truth/requests/*/*/*.parquet', hive_partitioning=false) t using (request_id)
        where t.true_energy_j > 0
    """)[0]
    assert median_ape < 0.15 and p95 < 1.0
