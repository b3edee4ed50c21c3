"""The AMD SMI backend, driven through a recording fake of amdsmi, and its import failure."""
from __future__ import annotations

import importlib.abc
import importlib.machinery
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [p for p in (str(ROOT / "tests"), str(ROOT)) if p not in sys.path]

from fakes.amdsmi_fake import FakeAmdSmi, FakeGpu  # noqa: E402

from collectors import amd  # noqa: E402
from collectors.amd import AmdSmiBackend  # noqa: E402
from collectors.chip_names import chip_id_from_market_name, number  # noqa: E402
from collectors.base import BackendUnavailable, rows_to_table  # noqa: E402
from collectors.factory import get_backend  # noqa: E402
from collectors.schema import DEVICE_SAMPLES  # noqa: E402


class Clock:
    def __init__(self, t: float = 1_750_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def backend(gpus: list[FakeGpu], clock: Clock | None = None) -> tuple[AmdSmiBackend, FakeAmdSmi]:
    smi = FakeAmdSmi(gpus)
    clock = clock or Clock()
    return AmdSmiBackend(node="m1", smi=smi, clock=clock, monotonic=clock, retry_after_s=30.0), smi


def test_an_mi300x_sample_is_in_spool_units_with_its_catalog_chip_id():
    b, _ = backend([FakeGpu(), FakeGpu(uuid="u2")])
    rows = b.sample()
    assert [r["device_id"] for r in rows] == ["m1/0", "m1/1"]
    r = rows[0]
    assert (r["chip"], r["vendor"], r["source"]) == ("amd-mi300x", "amd", "amdsmi")
    assert (r["power_w"], r["power_kind"]) == (350.0, "instant")
    assert r["energy_counter_j"] == pytest.approx(1_000_000 * 15.2587890625e-6)
    assert (r["utilization_pct"], r["memory_used_mib"], r["temperature_c"], r["sm_clock_mhz"]) == (93, 150_000, 71, 2100)
    assert r["power_limit_w"] == pytest.approx(750.0)
    assert rows_to_table(rows).schema.equals(DEVICE_SAMPLES)


def test_older_amdsmi_key_names_and_average_only_power_are_understood():
    gpu = FakeGpu(
        power_info={"average_socket_power": 301, "current_socket_power": "N/A", "socket_power": "N/A"},
        energy={"power": 2_000_000, "counter_resolution": 15.3, "timestamp": 5},
    )
    r = backend([gpu])[0].sample()[0]
    assert (r["power_w"], r["power_kind"]) == (301.0, "avg_window")
    assert r["energy_counter_j"] == pytest.approx(2_000_000 * 15.3e-6)


def test_power_reported_as_na_everywhere_gives_a_null_power_not_an_error():
    gpu = FakeGpu(power_info={"current_socket_power": "N/A", "average_socket_power": "N/A", "socket_power": "N/A"})
    b, _ = backend([gpu])
    r = b.sample()[0]
    assert r["power_w"] is None and r["power_kind"] == "unknown"
    assert r["energy_counter_j"] is not None
    assert b.errors_by_device == {}


def test_an_unsupported_hotspot_sensor_falls_back_to_edge_and_is_not_asked_again():
    b, smi = backend([FakeGpu(unsupported={"temp:HOTSPOT", "amdsmi_get_power_cap_info"})])
    rows = [b.sample()[0] for _ in range(3)]
    assert {r["temperature_c"] for r in rows} == {55}
    assert {r["power_limit_w"] for r in rows} == {None}
    assert smi.calls_to("temp:HOTSPOT") == 1
    assert smi.calls_to("temp:EDGE") == 3
    assert smi.calls_to("amdsmi_get_power_cap_info") == 1


def test_a_failing_device_is_counted_and_retried_while_the_others_keep_sampling():
    clock = Clock()
    gpus = [FakeGpu(uuid="u0"), FakeGpu(uuid="u1")]
    b, smi = backend(gpus, clock)
    gpus[0].failing = True
    assert [r["device_id"] for r in b.sample()] == ["m1/1"]
    assert b.errors_by_device == {"m1/0": 1}
    n0 = smi.calls_to("amdsmi_get_power_info", 0)
    clock.t += 5
    assert [r["device_id"] for r in b.sample()] == ["m1/1"]
    assert smi.calls_to("amdsmi_get_power_info", 0) == n0  # waiting for the retry
    gpus[0].failing = False
    clock.t += 30
    assert [r["device_id"] for r in b.sample()] == ["m1/0", "m1/1"]
    assert smi.calls_to("amdsmi_get_gpu_device_uuid", 0) == 2  # re-opened


def test_no_amd_gpu_is_backend_unavailable():
    with pytest.raises(BackendUnavailable, match="no AMD GPU"):
        AmdSmiBackend(smi=FakeAmdSmi([]))


class _RaisesKeyErrorOnImport(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Makes ``import amdsmi`` behave as the real package does without libamd_smi.so."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname == "amdsmi":
            return importlib.machinery.ModuleSpec(fullname, self)
        return None

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        print("Unable to find libamd_smi.so library try installing amd-smi-lib from your package manager")
        raise KeyError("libamd_smi.so")


def test_amdsmi_missing_its_library_raises_keyerror_and_gives_a_clear_message(monkeypatch, capsys):
    monkeypatch.delitem(sys.modules, "amdsmi", raising=False)
    monkeypatch.setattr(sys, "meta_path", [_RaisesKeyErrorOnImport(), *sys.meta_path])
    with pytest.raises(BackendUnavailable) as info:
        amd.load_amdsmi()
    message = str(info.value)
    assert message.startswith("AMD SMI library not found: libamd_smi.so")
    assert isinstance(info.value.__cause__, KeyError)
    assert capsys.readouterr().out == ""  # the library's own print is folded into the message
    # and "auto" moves on instead of crashing
    with pytest.raises(BackendUnavailable, match="AMD SMI library not found"):
        get_backend("amd", node="m1")


def test_cli_amd_backend_without_the_library_says_so_and_exits_non_zero(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "collectors.agent", "--backend", "amd", "--spool", str(tmp_path), "--duration-s", "0.2"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    if proc.returncode == 0:
        pytest.skip("this machine has a working AMD SMI")
    assert "AMD SMI library not found" in proc.stderr or "AMD SMI not available" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    "name, chip",
    [("AMD Instinct MI300X", "amd-mi300x"), ("Instinct MI300X OAM", "amd-mi300x"), ("AMD Instinct MI325X", "amd-mi325x"),
     ("AMD Instinct MI250X/MI250", "amd-mi250x"), ("Radeon RX 7900 XTX", "amd-radeon-rx-7900-xtx")],
)
def test_market_names_map_to_catalog_ids(name, chip):
    assert chip_id_from_market_name(name) == chip


def test_number_handles_na_and_sentinels():
    assert number("N/A") is None and number(None) is None and number(0xFFFFFFFF) is None
    assert number("350 W") == 350.0 and number(65535) == 65535.0 and number({"value": 7, "unit": "W"}) == 7.0
