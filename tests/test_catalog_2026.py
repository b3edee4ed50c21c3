"""The 2026 catalog: B200, MoE/reasoning/code/405B models, task routing, demo-2026 and fleet-2026."""
from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import numpy as np
import pytest
import yaml

from collectors.catalog import load_chips
from collectors.sim.fleet import FleetError, load_fleet
from collectors.sim.traffic import generate_day, task_mix

ROOT = Path(__file__).resolve().parents[1]
CODE = {"code-generate", "code-optimize", "code-fix"}
PRESET_TOTAL_RPS = {"demo-2026": 2.0, "fleet-2026": 24.0}


def test_b200_is_in_the_chip_catalog_with_cited_or_assumed_figures():
    chips = load_chips()
    b200 = chips["nvidia-b200"]
    assert (b200.rated_power_w, b200.memory_gb, b200.vendor) == (1000, 180, "nvidia")
    assert b200.idle_power_w < chips["nvidia-h100-sxm"].rated_power_w * 0.2
    raw = yaml.safe_load((ROOT / "collectors/catalog/chips.yaml").read_text())["chips"]["nvidia-b200"]["sources"]
    for key in ("rated_power_w", "idle_power_w", "memory_gb", "sensor"):
        assert "FACTS.md" in raw[key] or "assumption" in raw[key], key
    assert {"nvidia-h100-sxm", "nvidia-h200", "amd-mi300x", "custom-asic"} <= set(chips)


@pytest.mark.parametrize("name", ["demo-2026", "fleet-2026"])
def test_2026_presets_load_and_serve_five_chip_types(name):
    f = load_fleet(name)
    models = {r.model for r in f.replicas}
    chips = {n.chip for n in f.nodes}
    assert len(models) >= 5 and len(chips) >= 5
    assert {"nvidia-b200", "nvidia-h100-sxm", "amd-mi300x", "custom-asic"} <= chips
    assert {"qwen3-30b-a3b", "gpt-oss-120b", "qwen3-coder-30b-a3b"} <= models
    assert f.models["gpt-oss-120b"].output_tokens is not None  # the reasoning model
    if name == "fleet-2026":
        assert f.device_count() == 64 and {"llama-405b", "qwen3-235b-thinking"} <= models


@pytest.mark.parametrize("name", ["demo-2026", "fleet-2026"])
def test_preset_rates_follow_their_routes(name):
    tr = load_fleet(name).traffic
    assert set(tr.routes) == set(tr.tasks)
    for model, rps in tr.requests_per_s.items():
        expected = PRESET_TOTAL_RPS[name] * sum(tr.tasks[t] * tr.routes[t].get(model, 0.0) for t in tr.routes)
        assert rps == pytest.approx(expected, rel=1e-3), model


def test_routing_sends_code_to_the_code_model_and_chat_to_the_reasoning_model():
    f = load_fleet("demo-2026")
    names = list(f.tasks)
    by_model = {}
    for ri, rep in enumerate(f.replicas):
        arr = generate_day(f, ri, rep, 1.79e9, 1.79e9, 7, 0)
        by_model.setdefault(rep.model, []).append(arr)
    tasks = {m: {names[i] for a in arrs for i in np.unique(a.task)} for m, arrs in by_model.items()}
    assert tasks["qwen3-coder-30b-a3b"] == CODE
    for m in ("qwen3-30b-a3b", "llama-8b", "llama-70b", "gpt-oss-120b"):
        assert not tasks[m] & CODE, m
    assert tasks["gpt-oss-120b"] == {"chat"}
    out = np.concatenate([a.completion for a in by_model["gpt-oss-120b"]])
    chat = np.concatenate([a.completion for a in by_model["llama-70b"]])
    assert out.mean() == pytest.approx(f.models["gpt-oss-120b"].output_tokens["mean"], rel=0.05)
    assert out.mean() > 3 * chat.mean()


def test_without_routes_every_model_gets_the_fleet_task_mix():
    f = load_fleet("demo-classic")
    want = np.array([f.traffic.tasks[t] for t in f.tasks])
    for m in ("llama-8b", "llama-70b"):
        assert task_mix(f, m) == pytest.approx(want / want.sum())


def _write(tmp_path: Path, routes: dict) -> Path:
    raw = yaml.safe_load((ROOT / "collectors/catalog/fleets/demo-2026.yaml").read_text())
    raw["traffic"]["routes"] = routes
    p = tmp_path / "f.yaml"
    p.write_text(yaml.safe_dump(raw))
    return p


@pytest.mark.parametrize("routes, message", [
    ({"chat": {"no-such-model": 1.0}}, "traffic.routes.chat.no-such-model"),
    ({"poetry": {"llama-8b": 1.0}}, "traffic.routes.poetry"),
    ({"chat": {"llama-8b": -1.0}}, "traffic.routes.chat.llama-8b"),
    ({t: {"llama-8b": 1.0} for t in ("chat", "translate", "summarize", "code-generate", "code-optimize", "code-fix")},
     "sends no task to"),
])
def test_bad_routes_are_refused_naming_the_field(tmp_path, routes, message):
    with pytest.raises(FleetError, match=message):
        load_fleet(_write(tmp_path, routes))


def test_memory_comes_from_total_parameters(tmp_path):
    raw = yaml.safe_load((ROOT / "collectors/catalog/fleets/demo-2026.yaml").read_text())
    raw["perf"] = [{"model": "llama-405b", "chip": "nvidia-b200", "tp": 2, "max_batch": 8, "prefill_tokens_per_s": 1000,
                    "prefill_power_w": 900, "decode_t0_ms": 30, "decode_t1_ms": 0.1, "decode_power_a_w": 700,
                    "decode_power_c_w": 30}]
    raw["replicas"].append({"node": "b200-0", "model": "llama-405b", "devices": [2, 3]})
    raw["replicas"] = [r for r in raw["replicas"] if r["model"] != "llama-70b"]
    raw["traffic"]["requests_per_s"].pop("llama-70b")
    raw["traffic"]["routes"] = None
    p = tmp_path / "f.yaml"
    p.write_text(yaml.safe_dump(raw))
    with pytest.raises(FleetError, match="does not fit in 2 x 180"):
        load_fleet(p)


@pytest.mark.slow
def test_demo_2026_day_runs_through_the_pipeline_and_marts_carry_every_model_and_chip(tmp_path):
    home = tmp_path / "h"
    cli = [sys.executable, "-m", "pipelines.cli"]
    t0 = time.perf_counter()
    subprocess.run(cli + ["simulate", "--fleet", "demo-2026", "--days", "1", "--home", str(home)], check=True,
                   cwd=ROOT, capture_output=True)
    t1 = time.perf_counter()
    subprocess.run(cli + ["run", "--home", str(home)], check=True, cwd=ROOT, capture_output=True)
    print(f"demo-2026, 1 day: simulate {t1 - t0:.1f} s, run {time.perf_counter() - t1:.1f} s")
    f = load_fleet("demo-2026")
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        models = {r[0] for r in con.execute("select distinct model from marts.fct_request_energy").fetchall()}
        chips = {r[0] for r in con.execute("select distinct chip from marts.fct_device_energy_daily").fetchall()}
        req_chips = {r[0] for r in con.execute("select distinct chip from marts.fct_request_energy").fetchall()}
    finally:
        con.close()
    assert models == {r.model for r in f.replicas}
    assert chips == req_chips == {n.chip for n in f.nodes}
    shutil.rmtree(home, ignore_errors=True)
