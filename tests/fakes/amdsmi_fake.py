"""A recording fake of the parts of ``amdsmi`` that :mod:`collectors.amd` uses.

Every call is appended to ``calls`` as ``(function name, device index)``.
``FakeGpu.unsupported`` names functions (or ``"temp:HOTSPOT"``-style sensors)
that answer AMDSMI_STATUS_NOT_SUPPORTED; ``failing`` makes every call raise a
non-"not supported" library error (a device gone bad).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

AMDSMI_STATUS_NOT_SUPPORTED = 2
AMDSMI_STATUS_DRM_ERROR = 6


class AmdSmiException(Exception):
    pass


class AmdSmiLibraryException(AmdSmiException):
    def __init__(self, err_code: int) -> None:
        super().__init__(err_code)
        self.err_code = err_code

    def get_error_code(self) -> int:
        return self.err_code


class AmdSmiTemperatureType(Enum):
    EDGE = 0
    HOTSPOT = 1


class AmdSmiTemperatureMetric(Enum):
    CURRENT = 0


class AmdSmiClkType(Enum):
    GFX = 1


@dataclass
class FakeGpu:
    market_name: str = "AMD Instinct MI300X"
    uuid: str = "a1ff74a1-0000-1000-80aa-000000000001"
    power_info: dict[str, Any] = field(
        default_factory=lambda: {"socket_power": 350, "current_socket_power": 350, "average_socket_power": "N/A",
                                 "gfx_voltage": "N/A", "soc_voltage": "N/A", "mem_voltage": "N/A", "power_limit": 750}
    )
    energy: dict[str, Any] = field(
        default_factory=lambda: {"energy_accumulator": 1_000_000, "counter_resolution": 15.2587890625, "timestamp": 1}
    )
    activity: dict[str, Any] = field(default_factory=lambda: {"gfx_activity": 93, "umc_activity": 40, "mm_activity": "N/A"})
    vram: dict[str, Any] = field(default_factory=lambda: {"vram_total": 196_592, "vram_used": 150_000})
    temps: dict[str, int] = field(default_factory=lambda: {"HOTSPOT": 71, "EDGE": 55})
    clk_mhz: int = 2100
    power_cap_uw: int = 750_000_000
    asic_serial: str = "0x9B1A2C3D4E5F6071"
    compute_partition: str = "SPX"        # DPX/QPX/CPX: this handle is one partition of the GPU
    partition_id: int = 0                 # kfd_info's current_partition_id
    unsupported: set[str] = field(default_factory=set)
    failing: bool = False


class FakeAmdSmi:
    """Pass an instance as ``AmdSmiBackend(smi=...)``."""

    AmdSmiException = AmdSmiException
    AmdSmiLibraryException = AmdSmiLibraryException
    AmdSmiTemperatureType = AmdSmiTemperatureType
    AmdSmiTemperatureMetric = AmdSmiTemperatureMetric
    AmdSmiClkType = AmdSmiClkType

    def __init__(self, gpus: list[FakeGpu]) -> None:
        self.gpus = gpus
        self.calls: list[tuple[str, Any]] = []

    def calls_to(self, function: str, index: int | None = None) -> int:
        return sum(1 for f, i in self.calls if f == function and (index is None or i == index))

    def amdsmi_init(self) -> None:
        self.calls.append(("amdsmi_init", None))

    def amdsmi_shut_down(self) -> None:
        self.calls.append(("amdsmi_shut_down", None))

    def amdsmi_get_processor_handles(self) -> list[int]:
        return list(range(len(self.gpus)))

    def _gpu(self, function: str, handle: int, key: str | None = None) -> FakeGpu:
        self.calls.append((function, handle))
        gpu = self.gpus[handle]
        if gpu.failing:
            raise AmdSmiLibraryException(AMDSMI_STATUS_DRM_ERROR)
        if (key or function) in gpu.unsupported:
            raise AmdSmiLibraryException(AMDSMI_STATUS_NOT_SUPPORTED)
        return gpu

    def amdsmi_get_gpu_device_uuid(self, h: int) -> str:
        return self._gpu("amdsmi_get_gpu_device_uuid", h).uuid

    def amdsmi_get_gpu_asic_info(self, h: int) -> dict[str, Any]:
        gpu = self._gpu("amdsmi_get_gpu_asic_info", h)
        return {"market_name": gpu.market_name, "vendor_id": "0x1002", "asic_serial": gpu.asic_serial}

    def amdsmi_get_gpu_compute_partition(self, h: int) -> str:
        return self._gpu("amdsmi_get_gpu_compute_partition", h).compute_partition

    def amdsmi_get_gpu_kfd_info(self, h: int) -> dict[str, Any]:
        gpu = self._gpu("amdsmi_get_gpu_kfd_info", h)
        return {"kfd_id": 1000 + h, "node_id": 2 + h, "current_partition_id": gpu.partition_id}

    def amdsmi_get_power_info(self, h: int) -> dict[str, Any]:
        return dict(self._gpu("amdsmi_get_power_info", h).power_info)

    def amdsmi_get_energy_count(self, h: int) -> dict[str, Any]:
        return dict(self._gpu("amdsmi_get_energy_count", h).energy)

    def amdsmi_get_gpu_activity(self, h: int) -> dict[str, Any]:
        return dict(self._gpu("amdsmi_get_gpu_activity", h).activity)

    def amdsmi_get_gpu_vram_usage(self, h: int) -> dict[str, Any]:
        return dict(self._gpu("amdsmi_get_gpu_vram_usage", h).vram)

    def amdsmi_get_temp_metric(self, h: int, sensor: AmdSmiTemperatureType, metric: AmdSmiTemperatureMetric) -> int:
        assert metric is AmdSmiTemperatureMetric.CURRENT
        gpu = self._gpu(f"temp:{sensor.name}", h, key=f"temp:{sensor.name}")
        return gpu.temps[sensor.name]

    def amdsmi_get_clock_info(self, h: int, clk: AmdSmiClkType) -> dict[str, Any]:
        assert clk is AmdSmiClkType.GFX
        return {"clk": self._gpu("amdsmi_get_clock_info", h).clk_mhz, "min_clk": 500, "max_clk": 2100}

    def amdsmi_get_power_cap_info(self, h: int) -> dict[str, Any]:
        return {"power_cap": self._gpu("amdsmi_get_power_cap_info", h).power_cap_uw}
