"""A recording fake of the parts of ``pynvml`` that :mod:`collectors.nvidia` uses.

Error classes follow pynvml: ``NVMLError(value)`` returns the subclass for that
code (``NVMLError(15)`` is an ``NVMLError_GpuIsLost``), and ``.value`` holds it.
Every call is appended to ``calls`` as ``(function name, device index or None)``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

NVML_SUCCESS = 0
NVML_ERROR_NOT_SUPPORTED = 3
NVML_ERROR_NO_PERMISSION = 4
NVML_ERROR_LIBRARY_NOT_FOUND = 12
NVML_ERROR_GPU_IS_LOST = 15
NVML_ERROR_UNKNOWN = 999
NVML_FI_DEV_POWER_AVERAGE = 185
NVML_FI_DEV_POWER_INSTANT = 186
NVML_TEMPERATURE_GPU = 0
NVML_CLOCK_SM = 1
NVML_VALUE_TYPE_UNSIGNED_INT = 1
NVML_ERROR_NOT_FOUND = 6
NVML_DEVICE_MIG_ENABLE = 1
NVML_GPM_METRIC_GRAPHICS_UTIL = 1
NVML_GPM_METRICS_GET_VERSION = 1


class NVMLError(Exception):
    _by_code: dict[int, type] = {}

    def __new__(cls, value: int):
        if cls is NVMLError:
            cls = NVMLError._by_code.get(value, NVMLError)
        return Exception.__new__(cls)

    def __init__(self, value: int) -> None:
        super().__init__(value)
        self.value = value

    def __str__(self) -> str:
        return {3: "Not Supported", 12: "NVML Shared Library Not Found", 15: "GPU is lost"}.get(
            self.value, f"NVML error {self.value}"
        )


class NVMLError_NotSupported(NVMLError):
    pass


class NVMLError_LibraryNotFound(NVMLError):
    pass


class NVMLError_GpuIsLost(NVMLError):
    pass


NVMLError._by_code = {3: NVMLError_NotSupported, 12: NVMLError_LibraryNotFound, 15: NVMLError_GpuIsLost}


@dataclass
class FakeGpu:
    """One fake device; numbers in NVML's own units (mW, mJ, bytes)."""

    name: str | bytes = "NVIDIA H100 80GB HBM3"
    uuid: str = "GPU-00000000-0000-0000-0000-000000000000"
    arch: int = 9  # Hopper
    power_usage_mw: int = 400_000
    #: field id -> (nvmlReturn, value in mW)
    fields: dict[int, tuple[int, int]] = field(
        default_factory=lambda: {NVML_FI_DEV_POWER_INSTANT: (0, 412_000), NVML_FI_DEV_POWER_AVERAGE: (0, 398_000)}
    )
    energy_mj: int = 5_000_000
    util_pct: int = 87
    memory_used_bytes: int = 40 * 1024**3
    temperature_c: int = 61
    sm_clock_mhz: int = 1980
    power_limit_mw: int = 700_000
    #: NVML function names this device answers with NOT_SUPPORTED
    unsupported: set[str] = field(default_factory=set)
    lost: bool = False
    #: MIG mode: slot -> {"gi": GPU instance id, "memory_used_bytes": ..., "activity": GPM graphics %}
    mig: dict[int, dict[str, Any]] = field(default_factory=dict)
    gpm_supported: bool = True


class c_nvmlGpmMetricsGet_t:
    """pynvml's ctypes structure, as far as the backend fills and reads it."""

    def __init__(self) -> None:
        self.version = self.numMetrics = 0
        self.sample1 = self.sample2 = None
        self.metrics = [SimpleNamespace(metricId=0, nvmlReturn=NVML_ERROR_NOT_SUPPORTED, value=0.0)
                        for _ in range(4)]


class FakeNvml:
    """Pass an instance as ``NvmlBackend(nvml=...)``."""

    def __init__(self, gpus: list[FakeGpu], init_error: int | None = None) -> None:
        self.gpus = gpus
        self.init_error = init_error
        self.calls: list[tuple[str, Any]] = []
        for name, value in globals().items():
            if name.startswith("NVML") and not name.startswith("NVMLError"):
                setattr(self, name, value)
        self.NVMLError = NVMLError
        self.c_nvmlGpmMetricsGet_t = c_nvmlGpmMetricsGet_t
        self.gpm_live: set[int] = set()  # ids of GPM samples allocated and not freed
        self.NVMLError_NotSupported = NVMLError_NotSupported
        self.NVMLError_GpuIsLost = NVMLError_GpuIsLost
        self.NVMLError_LibraryNotFound = NVMLError_LibraryNotFound

    def calls_to(self, function: str, index: int | None = None) -> int:
        return sum(1 for f, i in self.calls if f == function and (index is None or i == index))

    # -- library ----------------------------------------------------------
    def nvmlInit(self) -> None:
        self.calls.append(("nvmlInit", None))
        if self.init_error is not None:
            raise NVMLError(self.init_error)

    def nvmlShutdown(self) -> None:
        self.calls.append(("nvmlShutdown", None))

    def nvmlDeviceGetCount(self) -> int:
        return len(self.gpus)

    # -- per device -------------------------------------------------------
    def _gpu(self, function: str, handle: Any) -> FakeGpu:
        index = handle.index
        self.calls.append((function, index))
        gpu = self.gpus[index]
        if gpu.lost:
            raise NVMLError(NVML_ERROR_GPU_IS_LOST)
        if function in gpu.unsupported:
            raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
        return gpu

    def nvmlDeviceGetHandleByIndex(self, index: int) -> SimpleNamespace:
        handle = SimpleNamespace(index=index)
        self._gpu("nvmlDeviceGetHandleByIndex", handle)
        return handle

    def nvmlDeviceGetUUID(self, h: Any) -> str:
        return self._gpu("nvmlDeviceGetUUID", h).uuid

    def nvmlDeviceGetName(self, h: Any) -> str | bytes:
        return self._gpu("nvmlDeviceGetName", h).name

    def nvmlDeviceGetArchitecture(self, h: Any) -> int:
        return self._gpu("nvmlDeviceGetArchitecture", h).arch

    def nvmlDeviceGetFieldValues(self, h: Any, field_ids: list[int]) -> list[SimpleNamespace]:
        gpu = self._gpu("nvmlDeviceGetFieldValues", h)
        self.calls.append(("field_ids", tuple(field_ids)))
        out = []
        for fid in field_ids:
            ret, value = gpu.fields.get(fid, (NVML_ERROR_NOT_SUPPORTED, 0))
            out.append(
                SimpleNamespace(
                    fieldId=fid, nvmlReturn=ret, valueType=NVML_VALUE_TYPE_UNSIGNED_INT,
                    value=SimpleNamespace(uiVal=value),
                )
            )
        return out

    def nvmlDeviceGetPowerUsage(self, h: Any) -> int:
        return self._gpu("nvmlDeviceGetPowerUsage", h).power_usage_mw

    def nvmlDeviceGetTotalEnergyConsumption(self, h: Any) -> int:
        return self._gpu("nvmlDeviceGetTotalEnergyConsumption", h).energy_mj

    def nvmlDeviceGetUtilizationRates(self, h: Any) -> SimpleNamespace:
        return SimpleNamespace(gpu=self._gpu("nvmlDeviceGetUtilizationRates", h).util_pct, memory=10)

    def nvmlDeviceGetMemoryInfo(self, h: Any) -> SimpleNamespace:
        gpu = self._gpu("nvmlDeviceGetMemoryInfo", h)
        if getattr(h, "slot", None) is not None:
            return SimpleNamespace(used=gpu.mig[h.slot]["memory_used_bytes"])
        return SimpleNamespace(used=gpu.memory_used_bytes)

    # -- MIG and GPM ------------------------------------------------------
    def nvmlDeviceGetMigMode(self, h: Any) -> list[int]:
        gpu = self._gpu("nvmlDeviceGetMigMode", h)
        return [1, 1] if gpu.mig else [0, 0]

    def nvmlDeviceGetMaxMigDeviceCount(self, h: Any) -> int:
        self._gpu("nvmlDeviceGetMaxMigDeviceCount", h)
        return 7

    def nvmlDeviceGetMigDeviceHandleByIndex(self, h: Any, slot: int) -> SimpleNamespace:
        gpu = self._gpu("nvmlDeviceGetMigDeviceHandleByIndex", h)
        if slot not in gpu.mig:
            raise NVMLError(NVML_ERROR_NOT_FOUND)
        return SimpleNamespace(index=h.index, slot=slot)

    def nvmlDeviceGetGpuInstanceId(self, h: Any) -> int:
        return self._gpu("nvmlDeviceGetGpuInstanceId", h).mig[h.slot]["gi"]

    def nvmlGpmQueryDeviceSupport(self, h: Any) -> SimpleNamespace:
        return SimpleNamespace(isSupportedDevice=int(self._gpu("nvmlGpmQueryDeviceSupport", h).gpm_supported))

    def nvmlGpmSampleAlloc(self) -> SimpleNamespace:
        sample = SimpleNamespace(activity=None)
        self.gpm_live.add(id(sample))
        return sample

    def nvmlGpmSampleFree(self, sample: SimpleNamespace) -> None:
        self.gpm_live.discard(id(sample))

    def nvmlGpmMigSampleGet(self, h: Any, gi: int, sample: SimpleNamespace) -> SimpleNamespace:
        gpu = self._gpu("nvmlGpmMigSampleGet", h)
        sample.activity = next(m["activity"] for m in gpu.mig.values() if m["gi"] == gi)
        return sample

    def nvmlGpmMetricsGet(self, get: c_nvmlGpmMetricsGet_t) -> c_nvmlGpmMetricsGet_t:
        assert get.version == NVML_GPM_METRICS_GET_VERSION and get.numMetrics == 1
        assert get.metrics[0].metricId == NVML_GPM_METRIC_GRAPHICS_UTIL
        assert id(get.sample1) in self.gpm_live and id(get.sample2) in self.gpm_live
        get.metrics[0].value, get.metrics[0].nvmlReturn = float(get.sample2.activity), NVML_SUCCESS
        return get

    def nvmlDeviceGetTemperature(self, h: Any, sensor: int) -> int:
        assert sensor == NVML_TEMPERATURE_GPU
        return self._gpu("nvmlDeviceGetTemperature", h).temperature_c

    def nvmlDeviceGetClockInfo(self, h: Any, clock: int) -> int:
        assert clock == NVML_CLOCK_SM
        return self._gpu("nvmlDeviceGetClockInfo", h).sm_clock_mhz

    def nvmlDeviceGetEnforcedPowerLimit(self, h: Any) -> int:
        return self._gpu("nvmlDeviceGetEnforcedPowerLimit", h).power_limit_mw
