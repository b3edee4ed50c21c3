"""The NVML backend, driven through a recording fake of pynvml."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [p for p in (str(ROOT / "tests"), str(ROOT)) if p not in sys.path]

from fakes import pynvml_fake as F  # noqa: E402
from fakes.pynvml_fake import FakeGpu, FakeNvml  # noqa: E402

from collectors.base import BackendUnavailable, DeviceError, rows_to_table  # noqa: E402
from collectors.chip_names import chip_id_from_name, usage_power_kind  # noqa: E402
from collectors.nvidia import NvmlBackend  # noqa: E402
from collectors.schema import DEVICE_SAMPLES  # noqa: E402


class Clock:
    def __init__(self, t: float = 1_750_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def backend(gpus: list[FakeGpu], clock: Clock | None = None, **kw) -> tuple[NvmlBackend, FakeNvml]:
    nvml = FakeNvml(gpus)
    clock = clock or Clock()
    return NvmlBackend(node="n1", nvml=nvml, clock=clock, monotonic=clock, retry_after_s=30.0, **kw), nvml


def test_a_sample_reads_every_device_in_spool_units_and_fits_the_schema():
    b, _ = backend([FakeGpu(uuid="GPU-a"), FakeGpu(name=b"NVIDIA H200", uuid="GPU-b")])
    rows = b.sample()
    assert [r["device_id"] for r in rows] == ["n1/0", "n1/1"]
    r0, r1 = rows
    assert r0["power_w"] == pytest.approx(412.0) and r0["power_kind"] == "instant"
    assert r0["energy_counter_j"] == pytest.approx(5000.0)
    assert r0["memory_used_mib"] == pytest.approx(40 * 1024)
    assert r0["power_limit_w"] == pytest.approx(700.0)
    assert (r0["utilization_pct"], r0["temperature_c"], r0["sm_clock_mhz"]) == (87.0, 61.0, 1980.0)
    assert (r0["chip"], r0["vendor"], r0["source"], r0["device_uuid"]) == ("nvidia-h100-sxm", "nvidia", "nvml", "GPU-a")
    assert r1["chip"] == "nvidia-h200"  # bytes names are decoded
    table = rows_to_table(rows)
    assert table.schema.equals(DEVICE_SAMPLES) and table.num_rows == 2


def test_each_field_value_entry_is_checked_and_an_unsupported_field_is_not_asked_again():
    gpu = FakeGpu(fields={F.NVML_FI_DEV_POWER_INSTANT: (F.NVML_ERROR_NOT_SUPPORTED, 0),
                          F.NVML_FI_DEV_POWER_AVERAGE: (0, 398_000)})
    b, nvml = backend([gpu])
    first = b.sample()[0]
    assert (first["power_w"], first["power_kind"]) == (pytest.approx(398.0), "avg_1s")
    b.sample()
    asked = [ids for f, ids in nvml.calls if f == "field_ids"]
    assert asked == [(F.NVML_FI_DEV_POWER_INSTANT, F.NVML_FI_DEV_POWER_AVERAGE), (F.NVML_FI_DEV_POWER_AVERAGE,)]
    assert nvml.calls_to("nvmlDeviceGetPowerUsage") == 0


@pytest.mark.parametrize(
    "name, arch, kind",
    [("NVIDIA H100 80GB HBM3", 9, "avg_1s"), ("NVIDIA A100-SXM4-80GB", 7, "instant"), ("NVIDIA L40S", 8, "avg_1s")],
)
def test_without_power_fields_power_usage_is_read_with_its_architecture_semantics(name, arch, kind):
    b, nvml = backend([FakeGpu(name=name, arch=arch, fields={}, power_usage_mw=321_500)])
    rows = [b.sample()[0] for _ in range(3)]
    assert rows[0]["power_w"] == pytest.approx(321.5)
    assert {r["power_kind"] for r in rows} == {kind}
    assert nvml.calls_to("nvmlDeviceGetFieldValues") == 1  # both fields unsupported: not asked again
    assert nvml.calls_to("nvmlDeviceGetPowerUsage") == 3


def test_unsupported_reads_become_nulls_and_are_not_retried_every_sample():
    b, nvml = backend([FakeGpu(unsupported={"nvmlDeviceGetTotalEnergyConsumption", "nvmlDeviceGetClockInfo"})])
    rows = [b.sample()[0] for _ in range(3)]
    assert all(r["energy_counter_j"] is None and r["sm_clock_mhz"] is None for r in rows)
    assert all(r["power_w"] is not None for r in rows)
    assert nvml.calls_to("nvmlDeviceGetTotalEnergyConsumption") == 1
    assert b.errors_by_device == {}  # not supported is not an error


def test_a_device_lost_mid_run_is_skipped_counted_and_retried_while_the_others_keep_sampling():
    clock = Clock()
    gpus = [FakeGpu(uuid=f"GPU-{i}") for i in range(3)]
    b, nvml = backend(gpus, clock)
    assert len(b.sample()) == 3

    gpus[1].lost = True
    clock.t += 1
    assert [r["device_id"] for r in b.sample()] == ["n1/0", "n1/2"]
    assert b.errors_by_device == {"n1/1": 1}
    assert b.failed_devices == ["n1/1"]

    calls_before = len([c for c in nvml.calls if c[1] == 1])
    clock.t += 10  # still inside retry_after_s: the lost device is not touched
    assert [r["device_id"] for r in b.sample()] == ["n1/0", "n1/2"]
    assert len([c for c in nvml.calls if c[1] == 1]) == calls_before

    clock.t += 25  # past the retry: still lost -> counted again
    assert len(b.sample()) == 2
    assert b.errors_by_device == {"n1/1": 2}

    gpus[1].lost = False
    clock.t += 31
    rows = b.sample()
    assert [r["device_id"] for r in rows] == ["n1/0", "n1/1", "n1/2"]
    assert nvml.calls_to("nvmlDeviceGetHandleByIndex", 1) == 3  # init + two re-opens
    assert b.failed_devices == []


def test_gpu_is_lost_in_a_field_value_entry_marks_the_device_failed():
    gpus = [FakeGpu(), FakeGpu(fields={F.NVML_FI_DEV_POWER_INSTANT: (F.NVML_ERROR_GPU_IS_LOST, 0)})]
    b, _ = backend(gpus)
    assert [r["device_id"] for r in b.sample()] == ["n1/0"]
    assert b.errors_by_device == {"n1/1": 1}
    assert "GpuIsLost" in str(b.last_error["n1/1"])
    assert isinstance(b.last_error["n1/1"], DeviceError)


def test_a_device_lost_at_start_does_not_stop_the_backend():
    clock = Clock()
    gpus = [FakeGpu(), FakeGpu(lost=True)]
    b, _ = backend(gpus, clock)
    assert [r["device_id"] for r in b.sample()] == ["n1/0"]
    gpus[1].lost = False
    clock.t += 31
    rows = b.sample()
    assert [r["chip"] for r in rows] == ["nvidia-h100-sxm", "nvidia-h100-sxm"]


def test_missing_nvml_library_is_backend_unavailable_with_a_clear_message():
    with pytest.raises(BackendUnavailable, match="NVML not available: NVML Shared Library Not Found"):
        NvmlBackend(nvml=FakeNvml([], init_error=F.NVML_ERROR_LIBRARY_NOT_FOUND))
    with pytest.raises(BackendUnavailable, match="no NVIDIA GPU"):
        NvmlBackend(nvml=FakeNvml([]))


def test_close_shuts_nvml_down_once():
    b, nvml = backend([FakeGpu()])
    b.close()
    b.close()
    assert nvml.calls_to("nvmlShutdown") == 1


@pytest.mark.parametrize(
    "name, chip",
    [
        ("NVIDIA H100 80GB HBM3", "nvidia-h100-sxm"),
        ("NVIDIA H100 SXM5 80GB", "nvidia-h100-sxm"),
        ("NVIDIA H100 PCIe", "nvidia-h100-pcie"),
        ("NVIDIA H100 NVL", "nvidia-h100-nvl"),
        ("NVIDIA H200", "nvidia-h200"),
        ("NVIDIA H200 NVL", "nvidia-h200"),
        ("NVIDIA GH200 480GB", "nvidia-gh200-480gb"),
        ("NVIDIA A100-SXM4-80GB", "nvidia-a100-sxm4-80gb"),
        ("Tesla T4", "nvidia-tesla-t4"),
    ],
)
def test_chip_names_map_to_catalog_ids(name, chip):
    assert chip_id_from_name(name) == chip


def test_power_usage_semantics_without_an_architecture_fall_back_to_the_name():
    assert usage_power_kind("NVIDIA H100 80GB HBM3", None) == "avg_1s"
    assert usage_power_kind("Tesla V100-SXM2-16GB", None) == "unknown"
    assert usage_power_kind("Tesla V100-SXM2-16GB", 5) == "instant"


def test_cli_with_pynvml_but_no_gpu_prints_a_clear_message_and_exits_non_zero(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "collectors.agent", "--backend", "nvidia", "--spool", str(tmp_path),
         "--duration-s", "0.2"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    if proc.returncode == 0:
        pytest.skip("this machine has a working NVML")
    assert "NVML not available:" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not list(tmp_path.rglob("*.parquet"))
