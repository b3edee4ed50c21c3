"""Issue 19, class 12: NaN, Inf and impossible numbers in a fleet file are refused by
`tokenwatt simulate`, naming the file and the field, before anything is simulated or allocated.

The issue's inputs: ``requests_per_s`` NaN/Inf/1e9, ``share`` NaN, ``skew_s`` Inf, a chip's
``rated_power_w`` NaN. The variant: a perf row, a fault duration, the replay rate, a language share,
a device count, an unknown key and a wrong type.
"""
from __future__ import annotations

import copy
import math
import tracemalloc
from pathlib import Path

import pytest
import yaml

from collectors.catalog import chips_raw
from pipelines.cli import main

PRESETS = Path(__file__).resolve().parents[1] / "collectors" / "catalog" / "fleets"
NAN, INF = math.nan, math.inf


def tiny() -> dict:
    return yaml.safe_load((PRESETS / "tiny.yaml").read_text())


def chip_override(**over) -> dict:
    chip = copy.deepcopy(chips_raw()["nvidia-h100-sxm"])
    chip.update(over)
    return {"nvidia-h100-sxm": chip}


ISSUE = [
    (lambda d: d["traffic"]["requests_per_s"].update({"llama-8b": NAN}), "traffic.requests_per_s.llama-8b"),
    (lambda d: d["traffic"]["requests_per_s"].update({"llama-8b": INF}), "traffic.requests_per_s.llama-8b"),
    (lambda d: d["traffic"]["requests_per_s"].update({"llama-70b": 1e9}), "traffic.requests_per_s.llama-70b"),
    (lambda d: d["replicas"][1].update(share=NAN), "replicas[1].share"),
    (lambda d: d.update(faults={"clock_skew": {"node": "asic-0", "skew_s": INF}}), "faults.clock_skew.skew_s"),
    (lambda d: d.update(chips=chip_override(rated_power_w=NAN)), "chips.nvidia-h100-sxm.rated_power_w"),
]
VARIANT = [
    (lambda d: d.update(perf=[{"model": "llama-8b", "chip": "nvidia-h100-sxm", "tp": 1, "max_batch": 8,
                               "prefill_tokens_per_s": 1000, "prefill_power_w": 500, "decode_t0_ms": INF,
                               "decode_t1_ms": 0.1, "decode_power_a_w": 300, "decode_power_c_w": 10}]),
     "perf[0].decode_t0_ms"),
    (lambda d: d.update(faults={"device_lost": {"node": "h100-0", "device": 0, "duration_s": -INF}}),
     "faults.device_lost.duration_s"),
    (lambda d: d["traffic"].update(mode="replay", replay={"trace": "code", "rate_scale": 1e9}),
     "traffic.replay.rate_scale"),
    (lambda d: d["traffic"]["languages"].update(en=NAN), "traffic.languages.en"),
    (lambda d: d["nodes"][0].update(devices=1e9), "nodes[0].devices"),
    (lambda d: d["nodes"][0].update(power_cap_w=300), "nodes[0].power_cap_w"),
    (lambda d: d["traffic"].update(error_rate="low"), "traffic.error_rate"),
    (lambda d: d.update(chips=chip_override(idle_power_w=INF)), "chips.nvidia-h100-sxm.idle_power_w"),
    (lambda d: d["nodes"][1].update(name="gpu\tnode"), "nodes[1].name"),
]


@pytest.mark.parametrize("mutate, field", ISSUE + VARIANT, ids=[f for _m, f in ISSUE + VARIANT])
def test_simulate_refuses_the_number_naming_file_and_field(tmp_path, capsys, mutate, field):
    data = tiny()
    mutate(data)
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(yaml.safe_dump(data))
    home = tmp_path / "home"
    tracemalloc.start()
    try:
        rc = main(["simulate", "--fleet", str(fleet), "--days", "1", "--home", str(home)])
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    err = capsys.readouterr().err
    assert rc == 2, err
    assert str(fleet) in err and f"'{field}'" in err, err
    assert not (home / "spool").exists() and not (home / "truth").exists()
    assert peak < 64 * 2**20  # refused before any day of traffic was allocated


def test_the_unmutated_fleet_still_simulates(tmp_path, capsys):
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(yaml.safe_dump(tiny()))
    assert main(["simulate", "--fleet", str(fleet), "--days", "1", "--interval-s", "300",
                 "--home", str(tmp_path / "home")]) == 0
    assert (tmp_path / "home" / "spool" / "device_samples").is_dir()
