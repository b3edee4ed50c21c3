"""The fleet format and the simulator: validation, determinism, sensors, faults, trace replay."""
from __future__ import annotations

import json
from pathlib import Path

import duckdb
import numpy as np
import pytest
import yaml

from collectors.sim.fleet import FleetError, load_fleet
from collectors.sim.simulate import simulate
from collectors.sim.traffic import load_azure_trace

PRESETS = Path(__file__).resolve().parents[1] / "collectors" / "catalog" / "fleets"


def _write(tmp_path, data) -> Path:
    p = tmp_path / "fleet.yaml"
    p.write_text(yaml.safe_dump(data))
    return p


def _tiny() -> dict:
    return yaml.safe_load((PRESETS / "tiny.yaml").read_text())


@pytest.mark.parametrize("mutate, field", [
    (lambda d: d["nodes"][0].update(chip="nvidia-b999"), "nodes[0].chip"),
    (lambda d: d["replicas"][0].update(devices=[0, 1]), "replicas[0].devices"),
    (lambda d: d["replicas"][1].update(model="gpt-9"), "replicas[1].model"),
    (lambda d: d["traffic"]["tasks"].update(poetry=0.1), "traffic.tasks.poetry"),
    (lambda d: d["traffic"].update(diurnal_amplitude="lots"), "traffic.diurnal_amplitude"),
    (lambda d: d.update(colour="blue"), "colour"),
    (lambda d: d["nodes"][0].pop("devices"), "nodes[0].devices"),
    (lambda d: d["nodes"][0].update(colour="blue"), "nodes[0].colour"),
    (lambda d: d["replicas"][0].update(weight=2), "replicas[0].weight"),
    (lambda d: d["traffic"].update(burstiness=2), "traffic.burstiness"),
    (lambda d: d.update(faults={"clock_skew": {"node": "asic-0", "skew_s": 1, "drift": 2}}), "faults.clock_skew.drift"),
    (lambda d: d.update(faults={"device_lost": {"node": "h100-0", "device": 7}}), "faults.device_lost.device"),
    (lambda d: d.update(faults={"bad_rows": "many"}), "faults.bad_rows"),
    (lambda d: d["nodes"][0].update(devices=2.5), "nodes[0].devices"),
    (lambda d: d["nodes"][1].update(name="h100 0") or d["nodes"][0].update(name="h100_0")
     or [r.update(node={"h100-0": "h100_0", "mi300x-0": "h100 0"}.get(r["node"], r["node"])) for r in d["replicas"]],
     "nodes[1].name"),
])
def test_a_wrong_fleet_file_is_rejected_with_the_field_named(tmp_path, mutate, field):
    data = _tiny()
    mutate(data)
    with pytest.raises(FleetError) as exc:
        load_fleet(_write(tmp_path, data))
    assert field in str(exc.value) and "fleet.yaml" in str(exc.value)


def test_every_preset_loads():
    for p in PRESETS.glob("*.yaml"):
        assert load_fleet(p).replicas


def test_simulation_is_deterministic_for_a_seed(tmp_path):
    a = simulate("tiny", tmp_path / "a", "2026-10-01", 1, 30.0, 5, progress=False)
    b = simulate("tiny", tmp_path / "b", "2026-10-01", 1, 30.0, 5, progress=False)
    assert a["requests"] == b["requests"] and a["samples"] == b["samples"]
    q = ("select device_id, ts, power_w, energy_counter_j from read_parquet('{}/spool/device_samples/*/*/*.parquet')"
         " order by device_id, ts")
    assert duckdb.execute(q.format(tmp_path / "a")).fetchall() == duckdb.execute(q.format(tmp_path / "b")).fetchall()


def test_sensors_follow_vendor_semantics_and_counters_integrate_true_energy(tmp_path):
    simulate("tiny", tmp_path, "2026-10-01", 1, 1.0, 3, progress=False)
    con = duckdb.connect()
    rows = con.execute(f"""
        select device_id, any_value(vendor), any_value(power_kind),
               max(energy_counter_j) - min(energy_counter_j) as counted, count(*)
        from read_parquet('{tmp_path}/spool/device_samples/*/*/*.parquet') group by 1 order by 1
    """).fetchall()
    truth = dict(con.execute(f"""
        select device_id, true_energy_j from read_parquet('{tmp_path}/truth/devices/*/*.parquet')
    """).fetchall())
    kinds = {r[1]: r[2] for r in rows}
    assert kinds == {"nvidia": "avg_1s", "amd": "instant", "custom": "avg_window"}
    for dev, vendor, _, counted, n in rows:
        assert n > 86000 * 0.99  # 1 s sampling, a few missed samples
        if vendor != "custom":  # the ASIC's 32-bit mJ counter wraps within a day
            assert counted == pytest.approx(truth[dev], rel=2e-3)


def test_chaos_preset_injects_and_records_every_fault(tmp_path):
    simulate("chaos", tmp_path, "2026-10-01", 1, 15.0, 9, progress=False)
    faults = {r[0] for r in duckdb.execute(
        f"select distinct fault from read_parquet('{tmp_path}/truth/faults.parquet')").fetchall()}
    assert faults >= {"device_lost", "counter_reset", "clock_skew", "duplicate_file", "late_file",
                      "truncated_file", "bad_row"}


def test_replaying_the_azure_code_trace_reproduces_its_arrivals_and_token_lengths(tmp_path):
    t, ctx, gen = load_azure_trace("code")
    data = _tiny()
    data["replicas"] = [{"node": "h100-0", "model": "llama-8b", "devices": [0]}]
    data["nodes"] = [data["nodes"][0]]
    data["traffic"]["mode"] = "replay"
    data["traffic"]["requests_per_s"] = {"llama-8b": 1.0}
    data["traffic"]["replay"] = {"trace": "code", "rate_scale": 1.0, "time_scale": 1.0}
    simulate(_write(tmp_path, data), tmp_path / "h", "2026-10-01", 1, 30.0, 1, progress=False)
    con = duckdb.connect()
    got = con.execute(f"""
        select count(*), median(prompt_tokens), quantile_cont(prompt_tokens, 0.9),
               median(completion_tokens), quantile_cont(completion_tokens, 0.9)
        from read_parquet('{tmp_path}/h/spool/requests/*/*/*.parquet')
        where arrival_ts < timestamptz '2026-10-01 00:00:00+00' + interval {float(t[-1]) + 1} seconds
    """).fetchone()
    assert got[0] == pytest.approx(len(t), rel=0.01)  # one pass of the trace, in-flight ones excepted
    assert got[1] == pytest.approx(np.median(ctx), rel=0.02)
    assert got[2] == pytest.approx(np.quantile(ctx, 0.9), rel=0.02)
    assert got[3] == pytest.approx(np.median(gen), rel=0.05)
    assert got[4] == pytest.approx(np.quantile(gen, 0.9), rel=0.05)


def test_default_fleet_joules_per_token_and_power_fall_in_the_measured_ranges():
    from collectors.sim.calibrate import calibrate

    report = calibrate("default", hours=24, seed=42)
    for row in report["rows"]:
        assert row["measured_low"] <= row["simulated_j_per_output_token"] <= row["measured_high"], row
    assert 231 <= report["h100_serving_power_w"]["median"] <= 694
    assert 101 <= report["idle_w"]["nvidia-h100-sxm"] <= 125
