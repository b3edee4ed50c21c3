"""The backend factory and its fallback."""
from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [p for p in (str(ROOT / "tests"), str(ROOT)) if p not in sys.path]

from fakes import pynvml_fake  # noqa: E402
from fakes.amdsmi_fake import FakeAmdSmi, FakeGpu as AmdGpu  # noqa: E402
from fakes.pynvml_fake import FakeGpu as NvGpu, FakeNvml  # noqa: E402

from collectors.amd import AmdSmiBackend  # noqa: E402
from collectors.base import Backend, BackendUnavailable  # noqa: E402
from collectors.factory import get_backend  # noqa: E402
from collectors.nvidia import NvmlBackend  # noqa: E402
from collectors.sim.live import SimLiveBackend  # noqa: E402


def test_auto_prefers_nvidia_then_amd():
    assert isinstance(get_backend("auto", node="a", nvml=FakeNvml([NvGpu()]), smi=FakeAmdSmi([AmdGpu()])), NvmlBackend)
    no_nvml = FakeNvml([], init_error=pynvml_fake.NVML_ERROR_LIBRARY_NOT_FOUND)
    b = get_backend("auto", node="a", nvml=no_nvml, smi=FakeAmdSmi([AmdGpu()]))
    assert isinstance(b, AmdSmiBackend)
    assert b.fallback_reasons == ["nvidia: NVML not available: NVML Shared Library Not Found"]


def test_auto_falls_back_to_the_simulator_with_a_message(caplog):
    no_nvml = FakeNvml([], init_error=pynvml_fake.NVML_ERROR_LIBRARY_NOT_FOUND)
    with caplog.at_level(logging.WARNING, logger="collectors.factory"):
        b = get_backend("auto", node="a", nvml=no_nvml, smi=FakeAmdSmi([]), devices=2, chip="amd-mi300x")
    assert isinstance(b, SimLiveBackend) and isinstance(b, Backend)
    assert len(b.sample()) == 2 and b.spec.chip == "amd-mi300x"
    assert "falling back to the simulated backend" in caplog.text
    assert "NVML not available" in caplog.text and "no AMD GPU" in caplog.text


def test_named_vendor_backends_do_not_fall_back():
    with pytest.raises(BackendUnavailable):
        get_backend("nvidia", nvml=FakeNvml([]))
    with pytest.raises(BackendUnavailable, match="--url"):
        get_backend("prometheus", urls=[])
    with pytest.raises(ValueError, match="unknown backend"):
        get_backend("tpu")
