"""The backend factory: a backend by name (``tokenwatt collect --backend``).

Each vendor backend is imported only when it is asked for, so importing this module needs no GPU
driver; no backend module imports this one, so the package has no import circle.
"""
from __future__ import annotations

import inspect
import logging
from typing import Any, Callable

from collectors.base import Backend, BackendUnavailable

log = logging.getLogger(__name__)

#: backend names accepted by :func:`get_backend` and ``tokenwatt collect --backend``
BACKEND_NAMES = ("auto", "nvidia", "amd", "prometheus", "sim")


def _construct(factory: Callable[..., Any], kw: dict[str, Any]) -> Any:
    """Call ``factory`` with only the keyword arguments it declares."""
    params = inspect.signature(factory).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return factory(**kw)
    return factory(**{k: v for k, v in kw.items() if k in params})


def get_backend(name: str, **kw: Any) -> Backend:
    """Build a backend by name.

    ``name`` is one of :data:`BACKEND_NAMES`. Keyword arguments are passed to the
    chosen backend's constructor when it declares them (``node``, ``urls``,
    ``devices``, ``chip``, ``nvml``, ``smi``, ...), so one call site can serve
    every backend.

    ``"auto"`` tries NVIDIA (NVML), then AMD (AMD SMI), then falls back to the
    live simulator; each skipped vendor is logged with its reason, and the
    reasons are kept on the returned backend as ``fallback_reasons``.

    Raises :class:`BackendUnavailable` when a named vendor backend cannot run,
    and :class:`ValueError` for an unknown name.
    """
    if name == "nvidia":
        from collectors.nvidia import NvmlBackend

        return _construct(NvmlBackend, kw)
    if name == "amd":
        from collectors.amd import AmdSmiBackend

        return _construct(AmdSmiBackend, kw)
    if name == "prometheus":
        from collectors.prometheus import PrometheusBackend

        return _construct(PrometheusBackend, kw)
    if name == "sim":
        from collectors.sim.live import SimLiveBackend

        return _construct(SimLiveBackend, kw)
    if name == "auto":
        reasons: list[str] = []
        for vendor in ("nvidia", "amd"):
            try:
                backend = get_backend(vendor, **kw)
            except BackendUnavailable as exc:
                reasons.append(f"{vendor}: {exc}")
                log.info("backend %s unavailable: %s", vendor, exc)
                continue
            backend.fallback_reasons = reasons  # type: ignore[attr-defined]
            return backend
        log.warning(
            "no GPU telemetry library usable, falling back to the simulated backend (--backend sim). %s",
            "; ".join(reasons),
        )
        backend = get_backend("sim", **kw)
        backend.fallback_reasons = reasons  # type: ignore[attr-defined]
        return backend
    raise ValueError(f"unknown backend {name!r}; expected one of {', '.join(BACKEND_NAMES)}")
