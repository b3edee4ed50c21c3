"""The device-telemetry backend protocol and its exceptions (the factory is collectors/factory.py).

A backend reads every device it can see once per call to :meth:`Backend.sample`
and returns one row per device in the :data:`collectors.schema.DEVICE_SAMPLES`
layout (a plain ``dict`` per row; :func:`rows_to_table` turns a list of them into
a typed Arrow table). Vendor libraries (``pynvml``, ``amdsmi``) are imported only
inside their own modules, and only when that backend is built, so importing this
module never needs a GPU driver.

Vendor errors are translated into one small, vendor-neutral family:

* :class:`BackendUnavailable` -- the backend cannot run on this machine at all
  (library missing, no driver, no device). ``collectors.factory.get_backend("auto")`` catches it
  and tries the next vendor.
* :class:`DeviceError` -- one device failed one read. Backends translate the
  vendor error on one device into it (:meth:`BackendBase.count_error`), count it
  in :attr:`BackendBase.errors_by_device` and keep sampling the other devices.
"""
from __future__ import annotations

import logging
import socket
from typing import Any, Callable, Protocol, runtime_checkable

import pyarrow as pa

from collectors.schema import DEVICE_SAMPLES

log = logging.getLogger(__name__)


class CollectorError(Exception):
    """Root of the collectors' vendor-neutral exception family."""


class BackendUnavailable(CollectorError):
    """The backend cannot run here (library, driver or devices missing)."""


class DeviceError(CollectorError):
    """One device failed a read; the device is retried later, the others keep going."""

    def __init__(self, device_id: str, message: str) -> None:
        super().__init__(f"{device_id}: {message}")
        self.device_id = device_id


@runtime_checkable
class Backend(Protocol):
    """What the sampling agent needs from a telemetry source."""

    #: short name written to the ``source`` column (nvml, amdsmi, sim, ...)
    source: str
    #: node name used in ``device_id`` ("<node>/<index>") and the spool partition
    node: str
    #: cumulative read errors per device id (or per scrape URL)
    errors_by_device: dict[str, int]

    def sample(self) -> list[dict[str, Any]]:
        """Read every device once; one DEVICE_SAMPLES row dict per readable device."""
        ...

    def close(self) -> None:
        """Release the vendor library / sockets. Safe to call twice."""
        ...


class BackendBase:
    """Shared bookkeeping for backends: node name, per-device error counters."""

    source = "unknown"

    def __init__(self, node: str | None = None) -> None:
        self.node: str = node or default_node()
        self.errors_by_device: dict[str, int] = {}
        #: last error per device id (vendor errors translated to DeviceError)
        self.last_error: dict[str, DeviceError] = {}

    def device_id(self, index: int) -> str:
        """Fleet-unique device id, ``"<node>/<index>"``."""
        return f"{self.node}/{index}"

    def count_error(self, device_id: str, message: str) -> DeviceError:
        """Record one failed read for ``device_id`` as a vendor-neutral :class:`DeviceError`."""
        error = DeviceError(device_id, message)
        self.errors_by_device[device_id] = self.errors_by_device.get(device_id, 0) + 1
        previous = self.last_error.get(device_id)
        if previous is None or str(previous) != str(error):
            log.warning("%s", error)
        self.last_error[device_id] = error
        return error

    def close(self) -> None:  # pragma: no cover - trivial default
        """Nothing to release by default."""


class RetryingDeviceBackend(BackendBase):
    """A vendor library backend whose devices fail and recover one at a time.

    A read that raises the vendor's error marks that device failed for ``retry_after_s``; the
    other devices keep sampling, and the failed one is re-opened once its wait is over.
    Subclasses set ``self.devices`` (objects with ``index`` and ``failed_until_s``) and provide
    ``_vendor_error`` (the library's exception class), ``_open(dev)``, ``_read(dev)`` and
    ``_shutdown()``.
    """

    def __init__(self, node: str | None, clock: Callable[[], float], monotonic: Callable[[], float],
                 retry_after_s: float) -> None:
        super().__init__(node)
        self._clock = clock
        self._monotonic = monotonic
        self.retry_after_s = retry_after_s
        self._closed = False
        self.devices: list[Any] = []

    @property
    def _vendor_error(self) -> type[BaseException]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _open(self, dev: Any) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _read(self, dev: Any) -> dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _shutdown(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _fail(self, dev: Any, exc: Exception, now_s: float) -> None:
        dev.failed_until_s = now_s + self.retry_after_s
        self.count_error(self.device_id(dev.index), f"{type(exc).__name__}: {exc}; retry in {self.retry_after_s:g} s")

    @property
    def failed_devices(self) -> list[str]:
        """Device ids currently marked failed (waiting for a retry)."""
        return [self.device_id(d.index) for d in self.devices if d.failed_until_s is not None]

    def sample(self) -> list[dict[str, Any]]:
        """One row per healthy device; failed devices are retried once their wait is over."""
        now_s = self._monotonic()
        rows: list[dict[str, Any]] = []
        for dev in self.devices:
            try:
                if dev.failed_until_s is not None:
                    if now_s < dev.failed_until_s:
                        continue
                    self._open(dev)
                rows.append(self._read(dev))
            except self._vendor_error as exc:
                self._fail(dev, exc, now_s)
        return rows

    def close(self) -> None:
        """Shut the vendor library down (once)."""
        if not self._closed:
            self._closed = True
            self._shutdown()


def default_node() -> str:
    """This host's node name (``collectors.names.host_name``: short, lower case), used when
    ``--node`` is not given, so the agent and the request log name a machine as exporters do."""
    from collectors.names import host_name

    return host_name(socket.gethostname()) or "localhost"


def empty_row() -> dict[str, Any]:
    """A DEVICE_SAMPLES row with every column present and null."""
    return dict.fromkeys(DEVICE_SAMPLES.names)


def rows_to_table(rows: list[dict[str, Any]]) -> pa.Table:
    """Typed Arrow table in the DEVICE_SAMPLES schema from row dicts."""
    return pa.Table.from_pylist(rows, schema=DEVICE_SAMPLES)
