"""AMD backend: per-device samples through AMD SMI (the ``amdsmi`` Python package).

What is read, per device and per sample:

* ``amdsmi_get_power_info``: ``current_socket_power`` (power_kind ``instant``)
  where the device reports it, else ``average_socket_power`` (``avg_window``);
  the library returns the string ``"N/A"`` for fields a device lacks.
* ``amdsmi_get_energy_count``: accumulator x ``counter_resolution`` is in uJ;
  the accumulator key is ``energy_accumulator`` in recent amdsmi and ``power``
  in older releases. Converted to joules.
* ``amdsmi_get_gpu_activity`` (``gfx_activity`` %), ``amdsmi_get_gpu_vram_usage``
  (``vram_used``, MiB), hotspot (else edge) temperature, GFX clock, power cap (uW).
* identity: ``amdsmi_get_gpu_device_uuid`` and ``amdsmi_get_gpu_asic_info``'s
  ``market_name`` (-> catalog chip id, e.g. MI300X -> ``amd-mi300x``).
* compute partitions (MI300X in DPX/QPX/CPX): each partition is a processor handle of its own;
  ``amdsmi_get_gpu_compute_partition`` gives the mode, ``amdsmi_get_gpu_kfd_info``'s
  ``current_partition_id`` the partition, ``asic_info``'s ``asic_serial`` the physical GPU. Only
  partition 0 reports power and energy: the physical GPU's readings are shared among its partitions
  by their ``gfx_activity`` (else evenly), energy conserved per GPU, by the same splitter as the
  exporters' partitions and MIG instances (:mod:`collectors.gpu_split`).

``import amdsmi`` raises ``KeyError`` (not ``ImportError``) when
``libamd_smi.so`` is missing; that, ``ImportError`` and ``OSError`` become
:class:`BackendUnavailable` with an "AMD SMI library not found" message.

Error handling mirrors :mod:`collectors.nvidia`: unsupported reads become null
columns and are not asked again; other errors mark the device failed, counted,
and retried after ``retry_after_s`` while the other devices keep sampling.
``amdsmi`` is imported lazily; tests pass a fake module as ``smi=``.
"""
from __future__ import annotations

import contextlib
import io
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from types import ModuleType
from typing import Any, Callable

from collectors.base import BackendUnavailable, RetryingDeviceBackend
from collectors.chip_names import chip_id_from_market_name, number
from collectors.gpu_split import GpuSplitter

#: AMDSMI_STATUS_NOT_SUPPORTED, _NOT_YET_IMPLEMENTED, _NO_PERM
_UNSUPPORTED_CODES = (2, 3, 10)
#: compute partition modes that split one GPU into several (SPX is the whole GPU)
_PARTITIONED = ("DPX", "TPX", "QPX", "CPX")
#: what amdsmi returns for a field it does not support (uint32)
_NOT_SUPPORTED_U32 = 0xFFFFFFFF


def load_amdsmi() -> ModuleType:
    """Import ``amdsmi`` or raise :class:`BackendUnavailable` with a clear message."""
    chatter = io.StringIO()  # amdsmi prints its own hint to stdout when the .so is missing
    try:
        with contextlib.redirect_stdout(chatter):
            import amdsmi  # noqa: PLC0415 - vendor import stays lazy
    except KeyError as exc:
        hint = " ".join(chatter.getvalue().split())
        raise BackendUnavailable(
            f"AMD SMI library not found: {exc.args[0] if exc.args else exc} could not be loaded"
            + (f" ({hint})" if hint else "")
            + "; install amd-smi-lib (ROCm) or set ROCM_PATH"
        ) from exc
    except (ImportError, OSError) as exc:
        raise BackendUnavailable(f"AMD SMI library not found: {exc}") from exc
    return amdsmi


@dataclass
class _Device:
    """What the backend knows about one AMD SMI processor handle."""

    index: int
    handle: Any
    uuid: str | None = None
    market_name: str | None = None
    chip: str | None = None
    partition: str | None = None   # partition id within a partitioned GPU (None: the whole GPU)
    parent: str | None = None      # the physical GPU's ASIC serial, shared by its partitions
    unsupported: set[str] = field(default_factory=set)
    opened: bool = False
    failed_until_s: float | None = None


class AmdSmiBackend(RetryingDeviceBackend):
    """Samples every AMD GPU on this node through AMD SMI."""

    source = "amdsmi"

    def __init__(
        self,
        node: str | None = None,
        smi: ModuleType | Any | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        retry_after_s: float = 30.0,
    ) -> None:
        super().__init__(node, clock, monotonic, retry_after_s)
        self._smi = smi if smi is not None else load_amdsmi()
        self._splitter = GpuSplitter()
        try:
            self._smi.amdsmi_init()
            handles = list(self._smi.amdsmi_get_processor_handles())
        except self._smi.AmdSmiException as exc:
            self._shutdown()
            raise BackendUnavailable(f"AMD SMI not available: {exc}") from exc
        if not handles:
            self._shutdown()
            raise BackendUnavailable("AMD SMI not available: no AMD GPU found")
        self.devices = [_Device(index=i, handle=h) for i, h in enumerate(handles)]
        now_s = self._monotonic()
        for dev in self.devices:
            try:
                self._open(dev)
            except self._smi.AmdSmiException as exc:
                self._fail(dev, exc, now_s)

    def _open(self, dev: _Device) -> None:
        smi = self._smi
        dev.uuid = str(smi.amdsmi_get_gpu_device_uuid(dev.handle))
        try:
            asic = smi.amdsmi_get_gpu_asic_info(dev.handle)
        except smi.AmdSmiException:
            asic = {}
        dev.market_name = str(asic.get("market_name", "N/A"))
        dev.chip = chip_id_from_market_name(dev.market_name) if dev.market_name != "N/A" else "amd-unknown"
        dev.partition, dev.parent = self._partition_of(dev, asic)
        dev.opened = True
        dev.failed_until_s = None

    def _partition_of(self, dev: _Device, asic: dict[str, Any]) -> tuple[str | None, str | None]:
        """(partition id, physical GPU serial) of a partition of a partitioned GPU, else (None, None)."""
        smi = self._smi
        read_mode = getattr(smi, "amdsmi_get_gpu_compute_partition", None)
        read_kfd = getattr(smi, "amdsmi_get_gpu_kfd_info", None)
        if read_mode is None or read_kfd is None:  # an amdsmi older than partitions
            return None, None
        mode = self._optional(dev, "compute_partition", lambda: read_mode(dev.handle))
        if str(mode or "").strip().upper() not in _PARTITIONED:
            return None, None
        kfd = self._optional(dev, "kfd_info", lambda: read_kfd(dev.handle)) or {}
        pid = kfd.get("current_partition_id")
        serial = asic.get("asic_serial")
        if not isinstance(pid, int) or pid == _NOT_SUPPORTED_U32 or serial in (None, "", "N/A"):
            return None, None
        return str(pid), str(serial)

    def sample(self) -> list[dict[str, Any]]:
        """One row per healthy device (partition), partitions sharing their GPU's power and energy."""
        return self._splitter.split(super().sample())

    @property
    def _vendor_error(self) -> type[BaseException]:
        return self._smi.AmdSmiException

    def _is_unsupported(self, exc: Exception) -> bool:
        code_of = getattr(exc, "get_error_code", None)
        code = code_of() if callable(code_of) else getattr(exc, "err_code", None)
        return code in _UNSUPPORTED_CODES

    def _optional(self, dev: _Device, key: str, read: Callable[[], Any]) -> Any:
        """``read()``, or None (and never again) if the device does not support it."""
        if key in dev.unsupported:
            return None
        try:
            return read()
        except self._smi.AmdSmiException as exc:
            if self._is_unsupported(exc):
                dev.unsupported.add(key)
                return None
            raise

    def _power(self, dev: _Device) -> tuple[float | None, str]:
        info = self._optional(dev, "power", lambda: self._smi.amdsmi_get_power_info(dev.handle)) or {}
        for key, kind in (
            ("current_socket_power", "instant"),
            ("average_socket_power", "avg_window"),
            ("socket_power", "unknown"),
        ):
            watts = number(info.get(key))
            if watts is not None and watts > 0:
                return watts, kind
        return None, "unknown"

    def _energy_j(self, dev: _Device) -> float | None:
        counts = self._optional(dev, "energy", lambda: self._smi.amdsmi_get_energy_count(dev.handle))
        if not counts:
            return None
        accumulator = number(counts.get("energy_accumulator", counts.get("power")))
        resolution_uj = number(counts.get("counter_resolution"))
        if accumulator is None or resolution_uj is None:
            return None
        return accumulator * resolution_uj / 1e6

    def _temperature_c(self, dev: _Device) -> float | None:
        smi = self._smi
        for key, sensor in (("temp_hotspot", "HOTSPOT"), ("temp_edge", "EDGE")):
            value = self._optional(
                dev,
                key,
                lambda s=sensor: smi.amdsmi_get_temp_metric(
                    dev.handle,
                    getattr(smi.AmdSmiTemperatureType, s),
                    smi.AmdSmiTemperatureMetric.CURRENT,
                ),
            )
            if number(value) is not None:
                return number(value)
        return None

    def _read(self, dev: _Device) -> dict[str, Any]:
        smi = self._smi
        h = dev.handle
        ts = datetime.fromtimestamp(self._clock(), tz=timezone.utc)
        power_w, power_kind = self._power(dev)
        activity = self._optional(dev, "activity", lambda: smi.amdsmi_get_gpu_activity(h)) or {}
        vram = self._optional(dev, "vram", lambda: smi.amdsmi_get_gpu_vram_usage(h)) or {}
        clock = self._optional(dev, "clock", lambda: smi.amdsmi_get_clock_info(h, smi.AmdSmiClkType.GFX)) or {}
        cap = self._optional(dev, "power_cap", lambda: smi.amdsmi_get_power_cap_info(h)) or {}
        cap_uw = number(cap.get("power_cap"))
        partition = {"_partition": dev.partition, "_parent": dev.parent} if dev.partition is not None else {}
        return partition | {
            "ts": ts,
            "node": self.node,
            "device_id": self.device_id(dev.index),
            "device_index": dev.index,
            "device_uuid": dev.uuid,
            "chip": dev.chip,
            "vendor": "amd",
            "power_w": power_w,
            "power_kind": power_kind,
            "energy_counter_j": self._energy_j(dev),
            "utilization_pct": number(activity.get("gfx_activity")),
            "memory_used_mib": number(vram.get("vram_used")),
            "temperature_c": self._temperature_c(dev),
            "sm_clock_mhz": number(clock.get("clk")),
            "power_limit_w": cap_uw / 1e6 if cap_uw is not None else None,
            "source": self.source,
        }

    def _shutdown(self) -> None:
        try:
            self._smi.amdsmi_shut_down()
        except Exception:  # noqa: BLE001 - shutting down, nothing to do about it
            pass
