"""MIG through the live NVML backend (a fake ``pynvml`` at the library boundary): each MIG device
is a device of its own, named as dcgm-exporter's instances are; NVML's whole-GPU power and energy
are shared by the instances' GPM graphics activity (evenly before the second sample or without
GPM), energy conserved per physical GPU; each instance keeps its own memory used."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [p for p in (str(ROOT / "tests"), str(ROOT)) if p not in sys.path]

from fakes.pynvml_fake import FakeGpu, FakeNvml  # noqa: E402

from collectors.base import rows_to_table  # noqa: E402
from collectors.nvidia import NvmlBackend  # noqa: E402

GIB = 1024**3


class Clock:
    def __init__(self) -> None:
        self.t = 1_790_000_000.0

    def __call__(self) -> float:
        return self.t


def _mig_gpu(gpm: bool = True) -> FakeGpu:
    return FakeGpu(uuid="GPU-aaaa", energy_mj=10_000_000, gpm_supported=gpm,
                   fields={186: (0, 500_000)},  # instant power 500 W, the whole GPU's
                   mig={0: {"gi": 1, "memory_used_bytes": 10 * GIB, "activity": 0.0},
                        2: {"gi": 5, "memory_used_bytes": 4 * GIB, "activity": 0.0}})  # slot 1 empty


def _run(nvml: FakeNvml, steps: list[tuple[int, float, float]]):
    clock = Clock()
    b = NvmlBackend(node="h1", nvml=nvml, clock=clock, monotonic=clock)
    out = []
    for energy_mj, act1, act5 in steps:
        gpu = nvml.gpus[0]
        gpu.energy_mj = energy_mj
        gpu.mig[0]["activity"], gpu.mig[2]["activity"] = act1, act5
        rows = b.sample()
        rows_to_table(rows)  # spool schema: no private keys left
        out.append({r["device_id"]: r for r in rows})
        clock.t += 1.0
    return b, out


def test_mig_devices_share_the_gpus_energy_by_gpm_activity_and_conserve_it():
    nvml = FakeNvml([_mig_gpu(), FakeGpu(uuid="GPU-bbbb")])
    steps = [(10_000_000, 50.0, 50.0), (10_600_000, 90.0, 30.0), (11_000_000, 0.0, 100.0), (11_500_000, 20.0, 20.0)]
    b, out = _run(nvml, steps)
    for k, rows in enumerate(out):
        assert sorted(rows) == ["h1/0/1", "h1/0/5", "h1/1"]  # the MIG GPU's instances, and a whole GPU
        a, c = rows["h1/0/1"], rows["h1/0/5"]
        assert (a["device_uuid"], c["device_uuid"]) == ("GPU-aaaa/1", "GPU-aaaa/5")
        assert (a["memory_used_mib"], c["memory_used_mib"]) == (10 * 1024, 4 * 1024)
        assert a["power_w"] + c["power_w"] == pytest.approx(500.0)
        act1, act5 = steps[k][1:]
        share = 0.5 if k == 0 else act1 / (act1 + act5)  # first sample: no GPM interval yet
        assert a["power_w"] == pytest.approx(500.0 * share)
        assert rows["h1/1"]["energy_counter_j"] == pytest.approx(5_000.0)
    for k in range(1, len(out)):
        inc = {d: out[k][d]["energy_counter_j"] - out[k - 1][d]["energy_counter_j"] for d in ("h1/0/1", "h1/0/5")}
        gpu_j = (steps[k][0] - steps[k - 1][0]) / 1000.0
        assert sum(inc.values()) == pytest.approx(gpu_j, rel=1e-12)
        assert inc["h1/0/1"] == pytest.approx(gpu_j * steps[k][1] / (steps[k][1] + steps[k][2]))
    b.close()
    assert not nvml.gpm_live  # every GPM sample freed


def test_without_gpm_the_instances_share_evenly():
    nvml = FakeNvml([_mig_gpu(gpm=False)])
    _, out = _run(nvml, [(10_000_000, 90.0, 10.0), (10_400_000, 90.0, 10.0)])
    inc = [out[1][d]["energy_counter_j"] - out[0][d]["energy_counter_j"] for d in ("h1/0/1", "h1/0/5")]
    assert inc == pytest.approx([200.0, 200.0])
    assert nvml.calls_to("nvmlGpmMigSampleGet") == 0


def test_a_gpu_not_in_mig_mode_is_one_device():
    nvml = FakeNvml([FakeGpu(uuid="GPU-cccc")])
    b = NvmlBackend(node="h1", nvml=nvml, clock=Clock(), monotonic=Clock())
    rows = b.sample()
    assert [(r["device_id"], r["device_uuid"]) for r in rows] == [("h1/0", "GPU-cccc")]
