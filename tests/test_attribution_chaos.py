"""Attribution under the chaos faults: resets, lost devices, skewed clocks, bad and duplicate files."""
from __future__ import annotations

import duckdb

from collectors.sim.simulate import simulate
from warehouse.attribution.run import run_attribution_days
from warehouse.ingest.load import connect, load_spool


def test_conservation_holds_on_every_device_day_with_chaos_faults(tmp_path):
    simulate("chaos", tmp_path, "2026-10-01", 2, 15.0, 21, progress=False)
    con = connect(tmp_path / "warehouse.duckdb")
    load_spool(con, tmp_path / "spool")
    run_attribution_days(con)
    worst, resets, integrated, gaps = con.execute("""
        select max(greatest(abs(attributed_active_j + shared_idle_j + unused_j - measured_energy_j),
                            abs(attributed_active_j - request_side_active_j),
                            abs(shared_idle_j - request_side_idle_j)) / measured_energy_j),
               sum(counter_resets), sum(integrated_intervals), sum(gap_s)
        from attribution.device_day
    """).fetchone()
    assert worst < 1e-6
    assert resets >= 1 and integrated >= 1  # the reset interval fell back to integrated power
    assert gaps >= 1200 * 0.9  # the lost device's 20 minutes show up as a gap
    # the skewed node and the lost device still get energy close to the truth per device-day
    err = con.execute(f"""
        select max(abs(a.measured_energy_j / t.true_energy_j - 1))
        from attribution.device_day a
        join read_parquet('{tmp_path}/truth/devices/*/*.parquet') t using (device_id, date)
    """).fetchone()[0]
    assert err < 0.01
    con.close()
