"""AMD compute partitions from device-metrics-exporter text: in CPX/DPX/QPX only partition 0 reports
power and energy (``gpu_energy_consumed``, microjoules typed as a gauge); the physical GPU's
readings are shared among its partitions by their graphics activity, energy conserved per GPU."""
from __future__ import annotations

import random
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

sys.path[:0] = [p for p in (str(Path(__file__).resolve().parents[1]),) if p not in sys.path]

from collectors.base import rows_to_table  # noqa: E402
from collectors.exposition import parse_exposition  # noqa: E402
from collectors.gpu_split import GpuSplitter  # noqa: E402
from collectors.schema import DEVICE_SAMPLES  # noqa: E402

T0 = datetime(2026, 10, 1, tzinfo=timezone.utc)
HEAD = ("# HELP gpu_energy_consumed Accumulated energy consumed by the GPU in uJ\n# TYPE gpu_energy_consumed gauge\n"
        "# HELP gpu_package_power Current socket power in Watts\n# TYPE gpu_package_power gauge\n"
        "# HELP gpu_gfx_activity Graphics engine usage percentage (0 - 100)\n# TYPE gpu_gfx_activity gauge\n")


def _labels(gpu_id: int, part: str, mode: str, serial: str) -> str:
    return (f'card_model="102-G30211-0C",card_series="AMD Instinct MI300X",gpu_compute_partition_type="{mode}",'
            f'gpu_id="{gpu_id}",gpu_partition_id="{part}",hostname="mi-1.example.internal",serial_number="{serial}"')


def text(energy_uj: float, power_w: float, acts: dict[int, float | None], spx_uj: float,
         with_partition_0: bool = True) -> str:
    """GPU S1 in CPX (gpu_id 0-3 = partitions 0-3), GPU S2 unpartitioned (SPX, gpu_id 4)."""
    out = HEAD
    for p, act in acts.items():
        lab = _labels(p, str(p), "CPX", "S1")
        if p == 0 and not with_partition_0:
            continue
        # partition 0 alone reports power and energy; the others report 0 power and no energy
        out += f"gpu_package_power{{{lab}}} {power_w if p == 0 else 0}\n"
        if p == 0:
            out += f"gpu_energy_consumed{{{lab}}} {energy_uj:.1f}\n"
        if act is not None:
            out += f"gpu_gfx_activity{{{lab}}} {act}\n"
    lab = _labels(4, "0", "SPX", "S2")
    out += f"gpu_package_power{{{lab}}} 500\ngpu_energy_consumed{{{lab}}} {spx_uj:.1f}\ngpu_gfx_activity{{{lab}}} 40\n"
    return out


@pytest.mark.parametrize("with_activity", [True, False])
def test_partition_counters_add_up_to_partition_0s_and_the_spx_gpu_is_untouched(with_activity):
    rng = random.Random(5)
    split, energy, spx, seen, first_uj = GpuSplitter(), 7e12, 3e12, [], None
    for k in range(150):
        energy += rng.uniform(0, 750e6)  # uJ: up to 750 J per second
        spx += 500e6
        power = rng.uniform(100, 750)
        acts = {p: (rng.choice([0.0, rng.uniform(0, 100)]) if with_activity else None) for p in range(4)}
        rows = parse_exposition(text(energy, power, acts, spx), T0 + timedelta(seconds=k), "x", mig=split).device_rows
        by = {r["device_id"]: r for r in rows}
        assert sorted(by) == ["mi-1/0", "mi-1/1", "mi-1/2", "mi-1/3", "mi-1/4"]
        assert {r["chip"] for r in rows} == {"amd-mi300x"}
        parts = [by[f"mi-1/{p}"] for p in range(4)]
        assert sum(r["power_w"] for r in parts) == pytest.approx(power)
        if with_activity and sum(acts.values()) > 0:
            busy = max(acts, key=lambda p: acts[p])
            assert by[f"mi-1/{busy}"]["power_w"] == pytest.approx(power * acts[busy] / sum(acts.values()))
        else:
            assert all(r["power_w"] == pytest.approx(power / 4) for r in parts)
        assert len({r["device_uuid"] for r in parts}) == 4  # one device per partition, not the parent's serial
        assert by["mi-1/4"]["energy_counter_j"] == pytest.approx(spx * 1e-6) and by["mi-1/4"]["power_w"] == 500
        assert by["mi-1/4"]["device_uuid"] == "S2"
        seen.append({d: r["energy_counter_j"] for d, r in by.items()})
        first_uj = energy if first_uj is None else first_uj
        assert rows_to_table(rows).schema.equals(DEVICE_SAMPLES)
    for a, b in zip(seen, seen[1:]):
        assert all(b[d] >= a[d] for d in a)  # still counters
    parts_delta = sum(seen[-1][f"mi-1/{p}"] - seen[0][f"mi-1/{p}"] for p in range(4))
    assert parts_delta == pytest.approx((energy - first_uj) * 1e-6, rel=1e-9)  # the GPU's own increment, in J


def test_without_partition_0_the_partitions_have_no_power_or_energy_and_a_saved_state_resumes():
    acts = {0: 10.0, 1: 30.0, 2: 0.0, 3: 60.0}
    one = GpuSplitter()
    a = parse_exposition(text(1e12, 400, acts, 1e12), T0, "x", mig=one).device_rows
    resumed = GpuSplitter(one.state())
    b1 = parse_exposition(text(1e12 + 2e9, 400, acts, 1e12), T0, "x", mig=one).device_rows
    b2 = parse_exposition(text(1e12 + 2e9, 400, acts, 1e12), T0, "x", mig=resumed).device_rows
    assert b1 == b2
    inc = {r["device_id"]: r["energy_counter_j"] - q["energy_counter_j"] for r, q in zip(b1, a)}
    assert inc["mi-1/3"] == pytest.approx(2000 * 0.6) and inc["mi-1/2"] == 0.0
    lost = parse_exposition(text(1e12 + 4e9, 400, acts, 1e12, with_partition_0=False), T0, "x", mig=one).device_rows
    parts = [r for r in lost if r["device_id"] != "mi-1/4"]
    assert [r["device_id"] for r in parts] == ["mi-1/1", "mi-1/2", "mi-1/3"]
    assert all(r["power_w"] is None and r["energy_counter_j"] is None for r in parts)
