"""MIG instances from dcgm-exporter text: devices of their own, the GPU's energy conserved."""
from __future__ import annotations

import random
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

sys.path[:0] = [p for p in (str(Path(__file__).resolve().parents[1]),) if p not in sys.path]

from collectors.exposition import MigSplitter, parse_exposition  # noqa: E402

T0 = datetime(2026, 10, 1, tzinfo=timezone.utc)


def text(energy_mj, actives):
    lines = []
    for gi, active in actives.items():
        labels = f'gpu="0",UUID="GPU-1",modelName="NVIDIA A100-SXM4-80GB",Hostname="a100-1",GPU_I_PROFILE="1g.10gb",GPU_I_ID="{gi}"'
        lines.append(f"DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION{{{labels}}} {energy_mj}")
        lines.append(f"DCGM_FI_DEV_POWER_USAGE{{{labels}}} 300")
        if active is not None:
            lines.append(f"DCGM_FI_PROF_GR_ENGINE_ACTIVE{{{labels}}} {active}")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("with_activity", [True, False])
def test_instance_counters_add_up_to_the_gpus_with_changing_activity(with_activity):
    rng = random.Random(3)
    mig, energy, seen, first_mj = MigSplitter(), 1e9, [], None
    for k in range(200):
        energy += rng.uniform(0, 400_000)  # mJ
        actives = {g: (rng.choice([0.0, rng.random()]) if with_activity else None) for g in ("1", "2", "9")}
        rows = parse_exposition(text(energy, actives), T0 + timedelta(seconds=k), "x", mig=mig).device_rows
        assert sorted(r["device_id"] for r in rows) == ["a100-1/0/1", "a100-1/0/2", "a100-1/0/9"]
        assert sum(r["power_w"] for r in rows) == pytest.approx(300.0)
        seen.append({r["device_id"]: r["energy_counter_j"] for r in rows})
        first_mj = first_mj if k else energy
    for a, b in zip(seen, seen[1:]):
        assert all(b[d] >= a[d] for d in a)  # still counters: never run backwards
    total = sum(seen[-1][d] - seen[0][d] for d in seen[0])
    assert total == pytest.approx((energy - first_mj) / 1000, rel=1e-9)  # the GPU's own increment, in J


def test_the_split_continues_across_a_saved_state():
    one, energy = MigSplitter(), 1e9
    rows = parse_exposition(text(energy, {"1": 0.5, "2": 0.1}), T0, "x", mig=one).device_rows
    resumed = MigSplitter(one.state())
    a = parse_exposition(text(energy + 6e6, {"1": 0.2, "2": 0.4}), T0, "x", mig=one).device_rows
    b = parse_exposition(text(energy + 6e6, {"1": 0.2, "2": 0.4}), T0, "x", mig=resumed).device_rows
    assert a == b and a[0]["energy_counter_j"] - rows[0]["energy_counter_j"] == pytest.approx(2000.0)
