"""AMD compute partitions through the live AMD SMI backend (a fake ``amdsmi`` at the library
boundary): each partition is a processor handle and a device of its own; in CPX only partition 0
reports power and energy, which the backend shares among the GPU's partitions by their
``gfx_activity`` (the splitter the exporter path uses), energy conserved per physical GPU."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [p for p in (str(ROOT / "tests"), str(ROOT)) if p not in sys.path]

from fakes.amdsmi_fake import FakeAmdSmi, FakeGpu  # noqa: E402

from collectors.amd import AmdSmiBackend  # noqa: E402
from collectors.base import rows_to_table  # noqa: E402
from collectors.schema import DEVICE_SAMPLES  # noqa: E402

RES_UJ = 15.2587890625


class Clock:
    def __init__(self) -> None:
        self.t = 1_790_000_000.0

    def __call__(self) -> float:
        return self.t


def _cpx_gpu(n: int, serial: str) -> list[FakeGpu]:
    """One MI300X in CPX: ``n`` handles; partition 0 alone has power and energy."""
    gpus = []
    for p in range(n):
        g = FakeGpu(uuid=f"{serial}-p{p}", asic_serial=serial, compute_partition="CPX", partition_id=p,
                    activity={"gfx_activity": 10 * (p + 1), "umc_activity": 0, "mm_activity": "N/A"})
        if p:
            g.power_info = {"socket_power": "N/A", "current_socket_power": "N/A", "average_socket_power": "N/A"}
            g.energy = {"energy_accumulator": 0, "counter_resolution": RES_UJ, "timestamp": 1}
        gpus.append(g)
    return gpus


def _backend(gpus):
    clock = Clock()
    return AmdSmiBackend(node="mi-1", smi=FakeAmdSmi(gpus), clock=clock, monotonic=clock), clock


def test_partitions_share_partition_0s_power_and_energy_by_activity_and_conserve_it():
    cpx = _cpx_gpu(4, "0xAAA")
    spx = FakeGpu(uuid="spx-uuid", asic_serial="0xBBB", power_info={"current_socket_power": 420},
                  energy={"energy_accumulator": 5_000_000, "counter_resolution": RES_UJ})
    b, clock = _backend(cpx + [spx])
    gpu_j, slices = [], []
    for step in range(5):
        acc = 1_000_000 + step * 3_000_000
        cpx[0].energy = {"energy_accumulator": acc, "counter_resolution": RES_UJ}
        cpx[0].power_info = {"current_socket_power": 600 + 10 * step}
        for p, g in enumerate(cpx):  # activity moves between partitions from sample to sample
            g.activity = {"gfx_activity": (p + 1) * (step + 1) % 7 + 1}
        rows = b.sample()
        clock.t += 1.0
        rows_to_table(rows)  # the spool schema takes them (no private keys left)
        assert all(set(r) == set(DEVICE_SAMPLES.names) for r in rows)
        by_id = {r["device_id"]: r for r in rows}
        assert sorted(by_id) == [f"mi-1/{i}" for i in range(5)]
        whole = by_id["mi-1/4"]  # the SPX GPU is untouched
        assert whole["power_w"] == 420 and whole["energy_counter_j"] == pytest.approx(5_000_000 * RES_UJ / 1e6)
        parts = [by_id[f"mi-1/{i}"] for i in range(4)]
        acts = [g.activity["gfx_activity"] for g in cpx]
        assert sum(r["power_w"] for r in parts) == pytest.approx(600 + 10 * step)
        for r, a in zip(parts, acts):
            assert r["power_w"] == pytest.approx((600 + 10 * step) * a / sum(acts))
        gpu_j.append(acc * RES_UJ / 1e6)
        slices.append([r["energy_counter_j"] for r in parts])
        assert len({r["device_uuid"] for r in parts}) == 4
    # every interval: the partitions' increments add up to the GPU's, each by its activity
    for k in range(1, 5):
        inc = [b_ - a_ for a_, b_ in zip(slices[k - 1], slices[k])]
        assert sum(inc) == pytest.approx(gpu_j[k] - gpu_j[k - 1], rel=1e-12)
        assert min(inc) > 0


def test_an_amdsmi_without_partition_support_reads_each_handle_as_a_whole_gpu():
    gpus = _cpx_gpu(2, "0xCCC")
    for g in gpus:
        g.unsupported = {"amdsmi_get_gpu_compute_partition"}
    b, _ = _backend(gpus)
    rows = b.sample()
    assert [r["power_w"] for r in rows] == [350, None]  # nothing shared: no partition is known
    assert rows[0]["energy_counter_j"] == pytest.approx(1_000_000 * RES_UJ / 1e6)


def test_without_partition_0_the_other_partitions_have_no_power_or_energy():
    gpus = _cpx_gpu(3, "0xDDD")
    gpus[0].failing = True  # partition 0's handle gone bad: retried later, the others keep sampling
    b, _ = _backend(gpus)
    rows = b.sample()
    assert [r["device_id"] for r in rows] == ["mi-1/1", "mi-1/2"]
    assert all(r["power_w"] is None and r["energy_counter_j"] is None for r in rows)
    assert b.failed_devices == ["mi-1/0"]
