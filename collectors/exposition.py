"""Exporter series -> DEVICE_SAMPLES rows and server counters: one mapping for the live scraper
(:mod:`collectors.prometheus`, exposition text) and the history import
(:mod:`collectors.prometheus_history`, ``query_range`` series), so both write the same rows.


* device rows (DEVICE_SAMPLES) from **dcgm-exporter** (``source = "dcgm-exporter"``):

  ==========================================  =======================  =====
  metric                                      column                   unit
  ==========================================  =======================  =====
  ``DCGM_FI_DEV_POWER_USAGE``                 power_w                  W
  ``DCGM_FI_DEV_POWER_USAGE_INSTANT``         power_w (preferred)      W
  ``DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION``    energy_counter_j         mJ
  ``DCGM_FI_DEV_GPU_UTIL``                    utilization_pct          %
  ``DCGM_FI_DEV_FB_USED``                     memory_used_mib          MiB
  ``DCGM_FI_DEV_GPU_TEMP``                    temperature_c            C
  ``DCGM_FI_DEV_SM_CLOCK``                    sm_clock_mhz             MHz
  ``DCGM_FI_DEV_POWER_MGMT_LIMIT``            power_limit_w            W
  ==========================================  =======================  =====

  labels ``gpu`` (index), ``UUID``, ``modelName`` and the host as ``Hostname``
  (older releases) or ``hostname`` (newer ones);
* device rows from the **AMD device-metrics-exporter** (``source = "amd-exporter"``):
  ``gpu_package_power`` (W, MI3xx, ``instant``), ``gpu_average_package_power``
  (W, MI2xx, ``avg_window``), ``gpu_power_usage`` (W, ``unknown``),
  ``gpu_energy_consumed`` (uJ), ``gpu_gfx_activity`` (%), ``gpu_used_vram`` (MiB),
  ``gpu_junction_temperature`` / ``gpu_edge_temperature`` (C), ``gpu_clock``
  (MHz, ``clock_type="GPU_CLOCK_TYPE_SYSTEM"``), an optional ``amd_`` prefix
  tolerated; labels ``gpu_id``, ``gpu_uuid`` or ``serial_number``, ``card_series`` (the
  chip's name; ``card_model`` is a board part number, used only when no series is given),
  ``hostname``;
* :class:`ServerCounters` from an inference server's own metrics (vLLM:
  ``vllm:prompt_tokens_total``, ``vllm:generation_tokens_total``,
  ``vllm:request_success_total``, ``vllm:num_requests_running``,
  ``vllm:num_requests_waiting``; the same names under ``sglang:``), summed over
  every label but the model and the replica (``tokenwatt_replica_id``, else ``replica_id``: a
  Prometheus target label naming the replica the server is). They are kept apart from device rows and can be
  written to the spool as the extra kind ``server_counters``
  (:data:`collectors.schema.SERVER_COUNTERS`), which the loader loads into ``raw.server_counters``.

MIG instances (dcgm-exporter labels ``GPU_I_ID`` / ``GPU_I_PROFILE``) are devices of their own,
``<node>/<gpu>/<instance>``, and AMD compute partitions (``gpu_partition_id``; only partition 0
reports power and energy) share their physical GPU's readings: see :mod:`collectors.gpu_split`.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Iterable, Mapping

from prometheus_client.parser import text_string_to_metric_families

from collectors.chip_names import chip_id_from_market_name, chip_id_from_name, usage_power_kind
from collectors.gpu_split import GpuSplitter, MigSplitter  # noqa: F401 (MigSplitter re-exported)
from collectors.names import host_name, name_problem
from collectors.schema import SERVER_COUNTERS, TS  # noqa: F401 (SERVER_COUNTERS re-exported)


# metric name (``_total`` suffix removed) -> (column, scale to the column's unit)
_DCGM: dict[str, tuple[str, float]] = {
    "DCGM_FI_DEV_POWER_USAGE": ("power_w", 1.0),
    "DCGM_FI_DEV_POWER_USAGE_INSTANT": ("power_instant_w", 1.0),
    "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION": ("energy_counter_j", 1e-3),  # mJ
    "DCGM_FI_DEV_GPU_UTIL": ("utilization_pct", 1.0),
    "DCGM_FI_DEV_FB_USED": ("memory_used_mib", 1.0),
    "DCGM_FI_DEV_GPU_TEMP": ("temperature_c", 1.0),
    "DCGM_FI_DEV_SM_CLOCK": ("sm_clock_mhz", 1.0),
    "DCGM_FI_DEV_POWER_MGMT_LIMIT": ("power_limit_w", 1.0),
}
_AMD: dict[str, tuple[str, float]] = {
    "gpu_package_power": ("power_package_w", 1.0),
    "gpu_average_package_power": ("power_average_w", 1.0),
    "gpu_power_usage": ("power_usage_w", 1.0),
    "gpu_energy_consumed": ("energy_counter_j", 1e-6),  # uJ
    "gpu_gfx_activity": ("utilization_pct", 1.0),
    "gpu_used_vram": ("memory_used_mib", 1.0),
    "gpu_junction_temperature": ("temperature_c", 1.0),
    "gpu_edge_temperature": ("temperature_edge_c", 1.0),
    "gpu_clock": ("sm_clock_mhz", 1.0),
}
#: per-MIG-instance graphics engine activity (0-1): how the GPU's energy is shared among instances
_GR_ACTIVE = "DCGM_FI_PROF_GR_ENGINE_ACTIVE"
_SERVER_PREFIXES = ("vllm:", "sglang:")
_SERVER: dict[str, str] = {
    "prompt_tokens": "prompt_tokens_total",
    "generation_tokens": "generation_tokens_total",
    "request_success": "request_success_total",
    "num_requests_running": "requests_running",
    "num_requests_waiting": "requests_waiting",
}


@dataclass
class ServerCounters:
    """An inference server's token and request counters at one scrape (SERVER_COUNTERS row)."""

    ts: datetime
    node: str
    url: str
    server: str
    model: str | None
    prompt_tokens_total: float | None = None
    generation_tokens_total: float | None = None
    request_success_total: float | None = None
    requests_running: float | None = None
    requests_waiting: float | None = None
    replica_id: str | None = None


@dataclass
class ScrapeResult:
    """What one exposition text held."""

    device_rows: list[dict[str, Any]]
    server_counters: list[ServerCounters]
    #: series skipped, with the reason (a device index out of range, a bad host name, NaN/Inf)
    skipped: list[str] = field(default_factory=list)


def _host_label(labels: dict[str, str]) -> str | None:
    return labels.get("hostname") or labels.get("Hostname") or None


def _replica_label(labels: Mapping[str, str]) -> str | None:
    """The replica a server's series name (``tokenwatt_replica_id``, else ``replica_id``), or None."""
    return labels.get("tokenwatt_replica_id") or labels.get("replica_id") or None


def _node(labels: dict[str, str], node: str, aliases: Mapping[str, str] | None) -> str:
    host = _host_label(labels)
    return host_name(host, aliases) if host else node


def parse_exposition(text: str, ts: datetime, node: str, url: str = "",
                     aliases: Mapping[str, str] | None = None, mig: MigSplitter | None = None) -> ScrapeResult:
    """Device rows and server counters from one Prometheus text exposition (see :func:`parse_samples`)."""
    samples = ((s.name, s.labels, s.value) for f in text_string_to_metric_families(text) for s in f.samples)
    return parse_samples(samples, ts, node, url, aliases, mig)


def parse_samples(samples: Iterable[tuple[str, Mapping[str, str], float]], ts: datetime, node: str,
                  url: str = "", aliases: Mapping[str, str] | None = None,
                  mig: MigSplitter | None = None) -> ScrapeResult:
    """Device rows and server counters from (metric name, labels, value) samples of one instant.

    ``node`` is used for series that carry no ``hostname``/``Hostname`` label; a label's host is
    normalised by :func:`collectors.names.host_name` (FQDN to short name, lower case, ``aliases``).
    MIG instance and AMD partition rows go through ``mig`` (a fresh :class:`GpuSplitter` when None).
    """
    devices: dict[tuple[str, str, int, str | None], dict[str, Any]] = {}
    servers: dict[tuple[str, str | None, str | None], ServerCounters] = {}

    def device(source: str, host: str, index: int, instance: str | None = None) -> dict[str, Any]:
        key = (source, host, index, instance)
        if key not in devices:
            devices[key] = {"_source": source, "_host": host, "_index": index, "_instance": instance}
        return devices[key]

    skipped: list[str] = []
    for sample_name, labels, raw in samples:
        name = sample_name[:-6] if sample_name.endswith("_total") else sample_name
        value = float(raw)
        problem = _series_problem(name, labels, value)
        if problem:
            skipped.append(f"{sample_name}{{{', '.join(f'{k}={v!r:.40}' for k, v in sorted(labels.items()))}}}: {problem}")
            continue
        if (name in _DCGM or name == _GR_ACTIVE) and "gpu" in labels:
            column, scale = _DCGM.get(name, ("_gr_active", 1.0))
            dev = device("dcgm-exporter", _node(labels, node, aliases), int(labels["gpu"]),
                         labels.get("GPU_I_ID") or None)
            dev.setdefault(column, value * scale)
            dev.setdefault("device_uuid", labels.get("UUID") or labels.get("uuid"))
            dev.setdefault("model_name", labels.get("modelName"))
            continue
        bare = name[4:] if name.startswith("amd_") else name
        if bare in _AMD and ("gpu_id" in labels or "gpu" in labels):
            if bare == "gpu_clock" and labels.get("clock_type", "GPU_CLOCK_TYPE_SYSTEM") != "GPU_CLOCK_TYPE_SYSTEM":
                continue
            column, scale = _AMD[bare]
            index = int(labels.get("gpu_id", labels.get("gpu", "0")))
            dev = device("amd-exporter", _node(labels, node, aliases), index)
            dev.setdefault(column, value * scale)
            dev.setdefault("device_uuid", labels.get("gpu_uuid") or labels.get("serial_number"))
            # card_model is a board part number (102-G30211-0C); the chip's name is card_series
            dev.setdefault("model_name", labels.get("card_series") or labels.get("card_model"))
            # a compute partition (DPX/QPX/CPX) of the GPU whose serial number it carries (collectors.gpu_split)
            if re.fullmatch(r"[0-9]{1,3}", labels.get("gpu_partition_id", "")):
                dev.setdefault("_partition", str(int(labels["gpu_partition_id"])))
                dev.setdefault("_parent", labels.get("serial_number"))
            continue
        for prefix in _SERVER_PREFIXES:
            if name.startswith(prefix) and name[len(prefix):] in _SERVER:
                model, replica = labels.get("model_name"), _replica_label(labels)
                key = (prefix[:-1], model, replica)
                counters = servers.setdefault(
                    key, ServerCounters(ts=ts, node=node, url=url, server=prefix[:-1], model=model, replica_id=replica)
                )
                attr = _SERVER[name[len(prefix):]]
                setattr(counters, attr, (getattr(counters, attr) or 0.0) + value)
                break

    private = ("_gr_active", "_instance", "_partition", "_parent")
    rows = (mig or GpuSplitter()).split([_device_row(dev, ts) | {k: dev.get(k) for k in private}
                                         for dev in devices.values()])
    rows.sort(key=lambda r: (r["node"], r["device_index"], r["device_id"], r["source"]))
    return ScrapeResult(device_rows=rows, server_counters=list(servers.values()), skipped=skipped)


#: largest device index kept (DEVICE_SAMPLES.device_index is int32; no machine has more GPUs)
MAX_DEVICE_INDEX = 4095


def _series_problem(name: str, labels: Mapping[str, str], value: float) -> str | None:
    """Why a sample cannot become part of a row, or None. Only samples this module maps are checked."""
    bare = name[4:] if name.startswith("amd_") else name
    if not (name in _DCGM or name == _GR_ACTIVE or bare in _AMD or name.startswith(_SERVER_PREFIXES)):
        return None
    if not math.isfinite(value):
        return f"value {value!r} is not finite"
    for key in ("gpu", "gpu_id", "GPU_I_ID"):
        if key in labels and not (re.fullmatch(r"[0-9]{1,4}", labels[key]) and int(labels[key]) <= MAX_DEVICE_INDEX):
            return f"label {key}={labels[key]!r:.40} is not a device index 0-{MAX_DEVICE_INDEX}"
    host = _host_label(labels)
    if host is not None and name_problem(host):
        return f"host label: {name_problem(host)}"
    return None


def _device_row(dev: dict[str, Any], ts: datetime) -> dict[str, Any]:
    """A DEVICE_SAMPLES row from the fields one exporter gave for one GPU."""
    source, host, index = dev["_source"], dev["_host"], dev["_index"]
    model = dev.get("model_name") or ""
    if source == "dcgm-exporter":
        vendor = "nvidia"
        chip = chip_id_from_name(model) if model else "nvidia-unknown"
        if dev.get("power_instant_w") is not None:
            power_w, power_kind = dev["power_instant_w"], "instant"
        else:
            power_w = dev.get("power_w")
            power_kind = usage_power_kind(model, None) if power_w is not None else "unknown"
    else:
        vendor = "amd"
        chip = chip_id_from_market_name(model) if model else "amd-unknown"
        power_w, power_kind = None, "unknown"
        for column, kind in (
            ("power_package_w", "instant"),
            ("power_average_w", "avg_window"),
            ("power_usage_w", "unknown"),
        ):
            if dev.get(column) is not None:
                power_w, power_kind = dev[column], kind
                break
    temperature = dev.get("temperature_c")
    if temperature is None:
        temperature = dev.get("temperature_edge_c")
    return {
        "ts": ts,
        "node": host,
        "device_id": f"{host}/{index}",
        "device_index": index,
        "device_uuid": dev.get("device_uuid"),
        "chip": chip,
        "vendor": vendor,
        "power_w": power_w,
        "power_kind": power_kind,
        "energy_counter_j": dev.get("energy_counter_j"),
        "utilization_pct": dev.get("utilization_pct"),
        "memory_used_mib": dev.get("memory_used_mib"),
        "temperature_c": temperature,
        "sm_clock_mhz": dev.get("sm_clock_mhz"),
        "power_limit_w": dev.get("power_limit_w"),
        "source": source,
    }


