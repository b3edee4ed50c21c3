"""NVIDIA backend: per-device samples through NVML (package ``nvidia-ml-py``, module ``pynvml``).

What is read, per device and per sample:

* power: the NVML field values ``NVML_FI_DEV_POWER_INSTANT`` (power_kind
  ``instant``) and ``NVML_FI_DEV_POWER_AVERAGE`` (``avg_1s``) through
  ``nvmlDeviceGetFieldValues``, each entry's own ``nvmlReturn`` checked; where
  neither is supported, ``nvmlDeviceGetPowerUsage`` (mW). On Ampere (except
  GA100) and newer, Hopper included, that call returns a 1-second average
  (``avg_1s``); on GA100 and older it is instantaneous.
* ``nvmlDeviceGetTotalEnergyConsumption`` (mJ since driver load) -> ``energy_counter_j``
* utilisation, memory used, GPU temperature, SM clock, enforced power limit.

MIG: on a GPU in MIG mode (``nvmlDeviceGetMigMode``) each MIG device (``nvmlDeviceGetMigDeviceHandleByIndex``)
is a device of its own, ``<node>/<gpu>/<GPU instance id>`` with ``device_uuid`` ``<GPU UUID>/<id>``,
as dcgm-exporter's instances are named (:mod:`collectors.gpu_split`). NVML reads power and energy only
for the whole GPU: they are shared among the instances by each one's graphics-engine activity, from
GPM (``nvmlGpmMigSampleGet``, metric ``NVML_GPM_METRIC_GRAPHICS_UTIL``, Hopper and newer: the metric
DCGM's ``DCGM_FI_PROF_GR_ENGINE_ACTIVE`` is), else evenly; energy is conserved per physical GPU. An
instance's memory used is its own.

A read that the device does not support (``NVMLError_NotSupported``,
``NoPermission``) leaves that column null and is not asked again. Any other
NVML error (``GpuIsLost``, ``Unknown``, ...) marks the device failed: it is
skipped, its error is counted in ``errors_by_device``, and it is re-opened
after ``retry_after_s``. The other devices keep sampling.

``pynvml`` is imported lazily; tests pass a fake module as ``nvml=``.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from types import ModuleType
from typing import Any, Callable

from collectors.base import BackendUnavailable, RetryingDeviceBackend
from collectors.chip_names import chip_id_from_name, usage_power_kind
from collectors.gpu_split import GpuSplitter

_MIB = 1024.0 * 1024.0

#: ctypes union member holding a field value, by NVML_VALUE_TYPE_*
_VALUE_MEMBER = {0: "dVal", 1: "uiVal", 2: "ulVal", 3: "ullVal", 4: "sllVal", 5: "siVal", 6: "usVal"}

_UNSUPPORTED_CODES = (3, 4, 13)  # NOT_SUPPORTED, NO_PERMISSION, FUNCTION_NOT_FOUND
_NOT_FOUND = 6                   # NVML_ERROR_NOT_FOUND: an empty MIG device slot
_MIG_ENABLED = 1                 # NVML_DEVICE_MIG_ENABLE


def _text(value: str | bytes) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def load_pynvml() -> ModuleType:
    """Import ``pynvml`` or raise :class:`BackendUnavailable`."""
    try:
        import pynvml  # noqa: PLC0415 - vendor import stays lazy
    except ImportError as exc:
        raise BackendUnavailable(
            f"NVML not available: pynvml is not installed ({exc}); pip install nvidia-ml-py"
        ) from exc
    return pynvml


@dataclass
class _Device:
    """What the backend knows about one NVML device index."""

    index: int
    handle: Any = None
    uuid: str | None = None
    name: str | None = None
    chip: str | None = None
    usage_kind: str = "unknown"
    power_fields: list[int] = field(default_factory=list)
    #: MIG mode: (GPU instance id, MIG device handle) of each MIG device; empty when not in MIG mode
    mig: list[tuple[str, Any]] = field(default_factory=list)
    #: the last GPM sample of each GPU instance (activity is measured between two samples)
    gpm: dict[str, Any] = field(default_factory=dict)
    unsupported: set[str] = field(default_factory=set)
    failed_until_s: float | None = None  # monotonic; None while healthy


class NvmlBackend(RetryingDeviceBackend):
    """Samples every NVIDIA GPU on this node through NVML."""

    source = "nvml"

    def __init__(
        self,
        node: str | None = None,
        nvml: ModuleType | Any | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        retry_after_s: float = 30.0,
    ) -> None:
        super().__init__(node, clock, monotonic, retry_after_s)
        self._nvml = nvml if nvml is not None else load_pynvml()
        self._splitter = GpuSplitter()
        nv = self._nvml
        try:
            nv.nvmlInit()
        except (nv.NVMLError, OSError) as exc:
            raise BackendUnavailable(f"NVML not available: {exc}") from exc
        try:
            count = int(nv.nvmlDeviceGetCount())
        except nv.NVMLError as exc:
            self._shutdown()
            raise BackendUnavailable(f"NVML not available: cannot count devices: {exc}") from exc
        if count == 0:
            self._shutdown()
            raise BackendUnavailable("NVML not available: the driver reports no NVIDIA GPU")
        self._fields = [nv.NVML_FI_DEV_POWER_INSTANT, nv.NVML_FI_DEV_POWER_AVERAGE]
        self.devices = [_Device(index=i, power_fields=list(self._fields)) for i in range(count)]
        now_s = self._monotonic()
        for dev in self.devices:
            try:
                self._open(dev)
            except nv.NVMLError as exc:
                self._fail(dev, exc, now_s)

    # -- device lifecycle -------------------------------------------------

    def _open(self, dev: _Device) -> None:
        """(Re)acquire the handle and identity of ``dev``."""
        nv = self._nvml
        handle = nv.nvmlDeviceGetHandleByIndex(dev.index)
        dev.uuid = _text(nv.nvmlDeviceGetUUID(handle))
        dev.name = _text(nv.nvmlDeviceGetName(handle))
        dev.chip = chip_id_from_name(dev.name)
        arch: int | None
        try:
            arch = int(nv.nvmlDeviceGetArchitecture(handle))
        except (nv.NVMLError, AttributeError):
            arch = None
        dev.usage_kind = usage_power_kind(dev.name, arch)
        dev.handle = handle
        self._free_gpm(dev)
        dev.mig = self._mig_devices(dev, handle)
        dev.failed_until_s = None

    def _mig_devices(self, dev: _Device, handle: Any) -> list[tuple[str, Any]]:
        """(GPU instance id, handle) of each MIG device of a GPU in MIG mode, else []."""
        nv = self._nvml
        if not hasattr(nv, "nvmlDeviceGetMigMode"):
            return []
        mode = self._optional(dev, "mig_mode", lambda: nv.nvmlDeviceGetMigMode(handle))
        if not mode or int(mode[0]) != _MIG_ENABLED:
            return []
        out = []
        for i in range(int(nv.nvmlDeviceGetMaxMigDeviceCount(handle))):
            try:
                mig = nv.nvmlDeviceGetMigDeviceHandleByIndex(handle, i)
            except nv.NVMLError as exc:
                if getattr(exc, "value", None) == _NOT_FOUND:
                    continue  # no MIG device in this slot
                raise
            out.append((str(int(nv.nvmlDeviceGetGpuInstanceId(mig))), mig))
        return out

    def _gpm_activity(self, dev: _Device, instance: str) -> float | None:
        """Graphics-engine activity (%) of a GPU instance since its previous sample (GPM), or None
        (first sample, or GPM not supported: the GPU's energy is then shared evenly)."""
        nv = self._nvml
        if "gpm" in dev.unsupported or not hasattr(nv, "nvmlGpmMigSampleGet"):
            return None
        if not dev.gpm and not getattr(self._optional(dev, "gpm", lambda: nv.nvmlGpmQueryDeviceSupport(dev.handle)),
                                       "isSupportedDevice", 0):
            dev.unsupported.add("gpm")
            return None
        sample = nv.nvmlGpmSampleAlloc()
        try:
            nv.nvmlGpmMigSampleGet(dev.handle, int(instance), sample)
        except nv.NVMLError as exc:
            nv.nvmlGpmSampleFree(sample)
            if not self._is_unsupported(exc):
                raise
            dev.unsupported.add("gpm")
            return None
        prev, dev.gpm[instance] = dev.gpm.get(instance), sample
        if prev is None:
            return None
        try:
            get = nv.c_nvmlGpmMetricsGet_t()
            get.version = nv.NVML_GPM_METRICS_GET_VERSION
            get.numMetrics = 1
            get.sample1, get.sample2 = prev, sample
            get.metrics[0].metricId = nv.NVML_GPM_METRIC_GRAPHICS_UTIL
            nv.nvmlGpmMetricsGet(get)
        finally:
            nv.nvmlGpmSampleFree(prev)
        metric = get.metrics[0]
        return float(metric.value) if int(metric.nvmlReturn) == nv.NVML_SUCCESS else None

    def _free_gpm(self, dev: _Device) -> None:
        for sample in dev.gpm.values():
            try:
                self._nvml.nvmlGpmSampleFree(sample)
            except Exception:  # noqa: BLE001 - a sample of a device gone away
                pass
        dev.gpm = {}

    def sample(self) -> list[dict[str, Any]]:
        """One row per healthy device; a GPU in MIG mode as one row per MIG device, sharing its
        power and energy (conserved per GPU)."""
        rows = super().sample()
        by_index = {d.index: d for d in self.devices if d.mig}
        if not by_index:
            return rows
        out = []
        for row in rows:
            dev = by_index.get(row["device_index"])
            if dev is None:
                out.append(row)
                continue
            try:
                for instance, mig in dev.mig:
                    memory = self._optional(dev, "mig_memory", lambda m=mig: self._nvml.nvmlDeviceGetMemoryInfo(m).used)
                    out.append({**row, "_instance": instance, "_gr_active": self._gpm_activity(dev, instance),
                                "utilization_pct": None, "memory_used_mib": memory / _MIB if memory is not None else None})
            except self._nvml.NVMLError as exc:  # the GPU's MIG devices changed or went bad: re-open later
                out = [r for r in out if r["device_index"] != dev.index]
                self._fail(dev, exc, self._monotonic())
        return self._splitter.split(out)

    @property
    def _vendor_error(self) -> type[BaseException]:
        return self._nvml.NVMLError

    # -- reading ----------------------------------------------------------

    def _is_unsupported(self, exc: Exception) -> bool:
        return getattr(exc, "value", None) in _UNSUPPORTED_CODES

    def _optional(self, dev: _Device, key: str, read: Callable[[], float]) -> float | None:
        """``read()``, or None (and never again) if the device does not support it."""
        if key in dev.unsupported:
            return None
        try:
            return read()
        except self._nvml.NVMLError as exc:
            if self._is_unsupported(exc):
                dev.unsupported.add(key)
                return None
            raise

    def _power(self, dev: _Device) -> tuple[float | None, str | None]:
        """Power in W and its kind, from the best source the device supports."""
        nv = self._nvml
        if dev.power_fields:
            try:
                values = nv.nvmlDeviceGetFieldValues(dev.handle, list(dev.power_fields))
            except nv.NVMLError as exc:
                if not self._is_unsupported(exc):
                    raise
                dev.power_fields = []
            else:
                readings: dict[int, float] = {}
                for field_id, fv in zip(list(dev.power_fields), values):
                    ret = int(fv.nvmlReturn)
                    if ret == nv.NVML_SUCCESS:
                        member = _VALUE_MEMBER.get(int(fv.valueType), "uiVal")
                        readings[field_id] = float(getattr(fv.value, member)) / 1000.0  # mW -> W
                    elif ret in _UNSUPPORTED_CODES:
                        dev.power_fields.remove(field_id)
                    elif ret == nv.NVML_ERROR_GPU_IS_LOST:
                        raise nv.NVMLError(ret)
                    # any other per-entry error: skip this field this time
                if nv.NVML_FI_DEV_POWER_INSTANT in readings:
                    return readings[nv.NVML_FI_DEV_POWER_INSTANT], "instant"
                if nv.NVML_FI_DEV_POWER_AVERAGE in readings:
                    return readings[nv.NVML_FI_DEV_POWER_AVERAGE], "avg_1s"
        usage_w = self._optional(dev, "power_usage", lambda: nv.nvmlDeviceGetPowerUsage(dev.handle) / 1000.0)
        if usage_w is None:
            return None, None
        return usage_w, dev.usage_kind

    def _read(self, dev: _Device) -> dict[str, Any]:
        nv = self._nvml
        h = dev.handle
        ts = datetime.fromtimestamp(self._clock(), tz=timezone.utc)
        power_w, power_kind = self._power(dev)
        return {
            "ts": ts,
            "node": self.node,
            "device_id": self.device_id(dev.index),
            "device_index": dev.index,
            "device_uuid": dev.uuid,
            "chip": dev.chip,
            "vendor": "nvidia",
            "power_w": power_w,
            "power_kind": power_kind or "unknown",
            "energy_counter_j": self._optional(
                dev, "energy", lambda: nv.nvmlDeviceGetTotalEnergyConsumption(h) / 1000.0
            ),
            "utilization_pct": self._optional(
                dev, "utilization", lambda: float(nv.nvmlDeviceGetUtilizationRates(h).gpu)
            ),
            "memory_used_mib": self._optional(dev, "memory", lambda: nv.nvmlDeviceGetMemoryInfo(h).used / _MIB),
            "temperature_c": self._optional(
                dev, "temperature", lambda: float(nv.nvmlDeviceGetTemperature(h, nv.NVML_TEMPERATURE_GPU))
            ),
            "sm_clock_mhz": self._optional(
                dev, "sm_clock", lambda: float(nv.nvmlDeviceGetClockInfo(h, nv.NVML_CLOCK_SM))
            ),
            "power_limit_w": self._optional(
                dev, "power_limit", lambda: nv.nvmlDeviceGetEnforcedPowerLimit(h) / 1000.0
            ),
            "source": self.source,
        }

    def _shutdown(self) -> None:
        for dev in self.devices:
            self._free_gpm(dev)
        try:
            self._nvml.nvmlShutdown()
        except Exception:  # noqa: BLE001 - shutting down, nothing to do about it
            pass
