"""The allocation basis reconciles: per-request cost adds up to the fleet bill within 0.01 %,
including bills without requests of their own (spare device, idle replica, a chip or a whole
day without traffic), and the dbt singular tests catch a mismatch."""
from __future__ import annotations

import os
import shutil
import subprocess

import duckdb
import pytest

from pipelines.dbt_project import DBT_DIR, dbt_executable


TOL = 1e-4  # 0.01 %


@pytest.fixture(scope="module")
def home(money_warehouse):
    h, facts = money_warehouse  # tests/conftest.py: the shared money warehouse
    assert facts["success"], facts["failures"]
    return h


def _dbt(db, tmp_path, *args):
    env = dict(os.environ, TOKENWATT_DB=str(db))
    return subprocess.run([dbt_executable(), *args, "--profiles-dir", str(DBT_DIR),
                           "--target-path", str(tmp_path / "dbt-target"), "--log-path", str(tmp_path / "dbt-logs")],
                          cwd=DBT_DIR, env=env, capture_output=True, text=True, timeout=600)


def _period(con):
    cols = [d[0] for d in con.execute("select * from marts.fct_cost_reconciliation limit 0").description]
    row = con.execute("select * from marts.fct_cost_reconciliation where grain = 'period'").fetchone()
    return dict(zip(cols, row))


def test_sum_of_request_cost_equals_fleet_bill(home):
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    allocated = con.execute("select sum(cost_usd), sum(energy_cost_usd), sum(hardware_cost_usd) "
                            "from marts.fct_request_energy").fetchone()
    bill = con.execute("select sum(total_cost_usd), sum(energy_cost_usd), sum(hardware_cost_usd) "
                       "from marts.fct_device_energy_daily").fetchone()
    pnl = con.execute("select sum(total_cost_usd) from marts.fct_pnl_daily where vendor = 'all'").fetchone()[0]
    p = _period(con)
    con.close()
    for a, b in zip(allocated, bill):
        assert abs(a - b) <= TOL * b, (a, b)
    assert abs(pnl - bill[0]) <= 1e-9 * bill[0]
    assert abs(p["fleet_bill_usd"] - bill[0]) <= 1e-9 * bill[0]
    assert abs(p["difference_rel"]) <= TOL


def test_bills_without_requests_are_named_and_spread(home):
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    p = _period(con)
    # the spare H100 (h100-0/1) and the ASIC replica with share 0 have no requests of their own
    spare = con.execute("""select sum(total_cost_usd) from marts.fct_device_energy_daily
                           where device_id = 'h100-0/1'""").fetchone()[0]
    idle_replica = con.execute("""select sum(total_cost_usd) from marts.fct_device_energy_daily
                                  where replica_id = 'asic-0-llama-8b-3'""").fetchone()[0]
    days = con.execute("select count(*) from marts.fct_cost_reconciliation where grain = 'day'").fetchone()[0]
    worst_day = con.execute("""select max(abs(difference_rel)) from marts.fct_cost_reconciliation
                               where grain = 'day'""").fetchone()[0]
    con.close()
    assert spare > 0 and idle_replica > 0
    assert p["unallocated_device_not_in_replica_usd"] == pytest.approx(spare, rel=1e-9)
    assert p["unallocated_replica_day_without_requests_usd"] == pytest.approx(idle_replica, rel=1e-9)
    # both go to the same chip's requests that day
    assert p["spread_chip_day_usd"] == pytest.approx(spare + idle_replica, rel=1e-9)
    assert p["direct_usd"] + p["spread_chip_day_usd"] == pytest.approx(p["fleet_bill_usd"], rel=1e-9)
    assert p["unallocated_day_without_requests_usd"] == 0
    assert days == 30 and worst_day <= TOL  # every day has traffic: each day reconciles too


def test_chip_or_whole_day_without_traffic_still_reconciles(home, tmp_path):
    """Remove the ASIC's requests on one day (its bill goes to the fleet's requests that day) and
    every request of another day (nothing can carry that day's bill: it is reported as
    unallocated, day without requests), rebuild, reconcile."""
    db = tmp_path / "warehouse.duckdb"
    shutil.copy(home / "warehouse.duckdb", db)
    con = duckdb.connect(str(db))
    con.execute("""delete from raw.requests where replica_id like 'asic-0-%'
                   and cast(timezone('UTC', arrival_ts) as date) = date '2026-10-05'""")
    con.execute("delete from raw.requests where cast(timezone('UTC', arrival_ts) as date) = date '2026-10-12'")
    con.close()
    run = _dbt(db, tmp_path, "build")
    assert run.returncode == 0, run.stdout[-3000:]
    assert "assert_request_cost_reconciles" in run.stdout and "assert_cost_reconciliation_period" in run.stdout

    con = duckdb.connect(str(db), read_only=True)
    p = _period(con)
    d5 = con.execute("""select spread_fleet_day_usd, difference_rel from marts.fct_cost_reconciliation
                        where grain = 'day' and period_start = date '2026-10-05'""").fetchone()
    d12 = con.execute("""select fleet_bill_usd, unallocated_day_without_requests_usd, allocated_to_requests_usd,
                                requests from marts.fct_cost_reconciliation
                         where grain = 'day' and period_start = date '2026-10-12'""").fetchone()
    asic_d5 = con.execute("""select sum(total_cost_usd) from marts.fct_device_energy_daily
                             where chip = 'custom-asic' and date = date '2026-10-05'""").fetchone()[0]
    total = con.execute("select sum(cost_usd) from marts.fct_request_energy").fetchone()[0]
    bill = con.execute("select sum(total_cost_usd) from marts.fct_device_energy_daily").fetchone()[0]
    con.close()
    assert d5[0] == pytest.approx(asic_d5, rel=1e-9) and abs(d5[1]) <= TOL
    assert d12[3] == 0 and d12[2] == 0 and d12[0] > 0 and d12[1] == pytest.approx(d12[0], rel=1e-9)
    assert p["unallocated_day_without_requests_usd"] == pytest.approx(d12[0], rel=1e-9)
    # the requests carry the bill of every day that had traffic
    assert abs(total - (bill - d12[0])) <= TOL * bill and abs(p["difference_rel"]) <= TOL

    # the singular test fails when the requests carry 0.1 % more than the bill
    con = duckdb.connect(str(db))
    con.execute("update marts.fct_request_energy set cost_usd = cost_usd * 1.001")
    con.close()
    bad = _dbt(db, tmp_path, "test", "--select", "assert_request_cost_reconciles")
    assert bad.returncode != 0
    assert "FAIL" in bad.stdout


def test_time_of_day_tariff_is_applied_by_hour(home):
    """The device-day's energy is priced hour by hour (power-weighted multiplier), and a request's
    usage cost at the multiplier of the hour it arrived (prices.yaml: x1.25 from 14 to 20 UTC)."""
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    lo, hi, worst = con.execute("""
        select min(tariff_multiplier), max(tariff_multiplier),
               max(abs(energy_cost_usd - measured_energy_kwh * pue * base_usd_per_kwh * tariff_multiplier)
                   / greatest(energy_cost_usd, 1e-12))
        from intermediate.int_device_day_costed""").fetchone()
    assert 1.0 < lo <= hi < 1.25 and worst < 1e-12
    # recompute one device-day's multiplier from the raw samples
    dev, day, mult = con.execute("""select device_id, date, tariff_multiplier from intermediate.int_device_day_costed
                                    order by device_id, date limit 1""").fetchone()
    again = con.execute("""
        select sum(s.power_w * t.multiplier) / sum(s.power_w)
        from raw.device_samples s join ref.tariff_hours t on t.hour = hour(timezone('UTC', s.ts))
        where s.device_id = ? and cast(timezone('UTC', s.ts) as date) = ?""", [dev, day]).fetchone()[0]
    assert again == pytest.approx(mult, rel=1e-9)
    assert mult != pytest.approx(1 + 6 * 0.25 / 24, rel=1e-6)  # not the flat 24-hour mean
    # usage basis: energy at the arrival hour's multiplier
    worst_usage = con.execute("""
        with rd as (select replica_id, date, sum(hardware_cost_usd) as hw, sum(measured_energy_j) as mj,
                           avg(pue) as pue, avg(base_usd_per_kwh) as kwh
                    from intermediate.int_device_day_costed where replica_id is not null group by all)
        select max(abs(r.usage_cost_usd - (r.active_energy_j / 3.6e6 * rd.pue * rd.kwh * t.multiplier
                                            + rd.hw * r.active_energy_j / rd.mj)) / greatest(r.usage_cost_usd, 1e-12))
        from marts.fct_request_energy r join rd using (replica_id, date)
        join ref.tariff_hours t on t.hour = hour(timezone('UTC', r.arrival_ts))""").fetchone()[0]
    con.close()
    assert worst_usage < 1e-9
