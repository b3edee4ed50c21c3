"""Prometheus backend: scrape the exporters a fleet already runs.

Exposition text is parsed with ``prometheus_client.parser.text_string_to_metric_families``;
HTTP is plain ``urllib``. One scrape of one URL can yield:

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
  tolerated; labels ``gpu_id``, ``gpu_uuid`` or ``serial_number``, ``card_model``,
  ``hostname``;
* :class:`ServerCounters` from an inference server's own metrics (vLLM:
  ``vllm:prompt_tokens_total``, ``vllm:generation_tokens_total``,
  ``vllm:request_success_total``, ``vllm:num_requests_running``,
  ``vllm:num_requests_waiting``; the same names under ``sglang:``), summed over
  every label but the model. They are kept apart from device rows and can be
  written to the spool as the extra kind ``server_counters``
  (:data:`SERVER_COUNTERS`, defined here, not in :mod:`collectors.schema`).

A URL that cannot be fetched or parsed, or is not whole within its deadline or under the size
cap, is counted in ``errors_by_device`` under ``"scrape:<url>"``; the other URLs are scraped
concurrently and are not delayed by it.
"""
from __future__ import annotations

import concurrent.futures
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import deque
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import pyarrow as pa
from prometheus_client.parser import text_string_to_metric_families

from collectors.amd import chip_id_from_market_name
from collectors.base import BackendBase, BackendUnavailable
from collectors.names import host_name
from collectors.nvidia import chip_id_from_name, usage_power_kind
from collectors.http_fetch import DEFAULT_MAX_BYTES, ScrapeDeadline, ScrapeTooLarge, fetch_text  # noqa: F401
from collectors.schema import TS
from collectors.spool import partition_dir, safe_name, write_atomic

SERVER_COUNTERS_KIND = "server_counters"
#: longest one sample() waits for its scrapes (a slower one is collected at the next sample)
DEFAULT_WAIT_S = 0.5

#: one row per inference server (and model) per scrape
SERVER_COUNTERS = pa.schema(
    [
        ("ts", TS),                               # scrape time, UTC
        ("node", pa.string()),
        ("url", pa.string()),                     # the scraped endpoint
        ("server", pa.string()),                  # vllm | sglang
        ("model", pa.string()),                   # model_name label (null if none)
        ("prompt_tokens_total", pa.float64()),    # cumulative counters since server start
        ("generation_tokens_total", pa.float64()),
        ("request_success_total", pa.float64()),
        ("requests_running", pa.float64()),       # gauges at scrape time
        ("requests_waiting", pa.float64()),
    ]
)

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
_SERVER_PREFIXES = ("vllm:", "sglang:")
_SERVER: dict[str, str] = {
    "prompt_tokens": "prompt_tokens_total",
    "generation_tokens": "generation_tokens_total",
    "request_success": "request_success_total",
    "num_requests_running": "requests_running",
    "num_requests_waiting": "requests_waiting",
}
_LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", ""}


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


@dataclass
class ScrapeResult:
    """What one exposition text held."""

    device_rows: list[dict[str, Any]]
    server_counters: list[ServerCounters]


def _host_label(labels: dict[str, str]) -> str | None:
    return labels.get("hostname") or labels.get("Hostname") or None


def _node(labels: dict[str, str], node: str, aliases: Mapping[str, str] | None) -> str:
    host = _host_label(labels)
    return host_name(host, aliases) if host else node


def parse_exposition(text: str, ts: datetime, node: str, url: str = "",
                     aliases: Mapping[str, str] | None = None) -> ScrapeResult:
    """Device rows and server counters from one Prometheus text exposition.

    ``node`` is used for series that carry no ``hostname``/``Hostname`` label; a label's host is
    normalised by :func:`collectors.names.host_name` (FQDN to short name, lower case, ``aliases``).
    """
    devices: dict[tuple[str, str, int], dict[str, Any]] = {}
    servers: dict[tuple[str, str | None], ServerCounters] = {}

    def device(source: str, host: str, index: int) -> dict[str, Any]:
        key = (source, host, index)
        if key not in devices:
            devices[key] = {"_source": source, "_host": host, "_index": index}
        return devices[key]

    for family in text_string_to_metric_families(text):
        for s in family.samples:
            name = s.name[:-6] if s.name.endswith("_total") else s.name
            labels = s.labels
            value = float(s.value)
            if name in _DCGM and "gpu" in labels:
                column, scale = _DCGM[name]
                dev = device("dcgm-exporter", _node(labels, node, aliases), int(labels["gpu"]))
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
                dev.setdefault("model_name", labels.get("card_model"))
                continue
            for prefix in _SERVER_PREFIXES:
                if name.startswith(prefix) and name[len(prefix):] in _SERVER:
                    model = labels.get("model_name")
                    key = (prefix[:-1], model)
                    counters = servers.setdefault(
                        key, ServerCounters(ts=ts, node=node, url=url, server=prefix[:-1], model=model)
                    )
                    attr = _SERVER[name[len(prefix):]]
                    setattr(counters, attr, (getattr(counters, attr) or 0.0) + value)
                    break

    rows = [_device_row(dev, ts) for dev in devices.values()]
    rows.sort(key=lambda r: (r["node"], r["device_index"], r["source"]))
    return ScrapeResult(device_rows=rows, server_counters=list(servers.values()))


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


class PrometheusBackend(BackendBase):
    """Scrapes one or more exporter / inference-server ``/metrics`` URLs per sample.

    Targets are scraped concurrently, one worker thread per URL, each request bounded by
    ``timeout_s`` (whole request) and ``max_bytes``. :meth:`sample` starts a scrape of every
    URL that has none in flight and waits at most ``wait_s`` for them; a scrape still running
    then is left to finish within its own deadline and its rows (stamped when it finished) come
    back from the next :meth:`sample`. So a hung or trickling target costs its own rows, never
    the other targets' ticks; a URL whose scrape is still in flight is not scraped again.
    """

    source = "prometheus"

    def __init__(
        self,
        urls: Iterable[str] = (),
        node: str | None = None,
        timeout_s: float = 2.0,
        clock: Callable[[], float] = time.time,
        fetch: Callable[..., str] = fetch_text,
        max_pending_counters: int = 10_000,
        max_bytes: int = DEFAULT_MAX_BYTES,
        wait_s: float | None = None,
        aliases: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(node)
        self.aliases = dict(aliases or {})
        self.node = host_name(self.node, self.aliases)
        self.urls = list(dict.fromkeys(u for u in urls if u))
        if not self.urls:
            raise BackendUnavailable("prometheus backend needs at least one --url to scrape")
        if not (timeout_s > 0 and max_bytes > 0):
            raise ValueError("timeout_s and max_bytes must be > 0")
        self.timeout_s = timeout_s
        self.max_bytes = max_bytes
        self.wait_s = min(timeout_s, DEFAULT_WAIT_S) if wait_s is None else wait_s
        self._clock = clock
        self._fetch = fetch
        self._pending: deque[ServerCounters] = deque(maxlen=max_pending_counters)
        self._in_flight: dict[str, concurrent.futures.Future] = {}
        self.skipped_in_flight: dict[str, int] = {}

    def _node_for(self, url: str) -> str:
        host = urllib.parse.urlsplit(url).hostname or ""
        return self.node if host in _LOCAL_HOSTS else host_name(host, self.aliases)

    def scrape(self, url: str) -> ScrapeResult:
        """Fetch and parse one URL (errors propagate)."""
        text = self._fetch(url, self.timeout_s, self.max_bytes)
        ts = datetime.fromtimestamp(self._clock(), tz=timezone.utc)
        return parse_exposition(text, ts, self._node_for(url), url, self.aliases)

    def _start(self, url: str) -> concurrent.futures.Future:
        """Scrape ``url`` on a daemon thread (a scrape in flight never holds up the process's exit)."""
        future: concurrent.futures.Future = concurrent.futures.Future()

        def work() -> None:
            try:
                future.set_result(self.scrape(url))
            except BaseException as exc:  # noqa: BLE001 - handed to sample() through the future
                future.set_exception(exc)

        threading.Thread(target=work, name=f"tokenwatt-scrape:{url}", daemon=True).start()
        return future

    def sample(self) -> list[dict[str, Any]]:
        """Device rows from every URL; server counters are queued for :meth:`drain_server_counters`."""
        for url in self.urls:
            if url in self._in_flight:
                self.skipped_in_flight[url] = self.skipped_in_flight.get(url, 0) + 1
            else:
                self._in_flight[url] = self._start(url)
        concurrent.futures.wait(list(self._in_flight.values()), timeout=self.wait_s)
        rows: list[dict[str, Any]] = []
        for url in self.urls:
            future = self._in_flight.get(url)
            if future is None or not future.done():
                continue
            del self._in_flight[url]
            try:
                result = future.result()
            except (OSError, ValueError, urllib.error.URLError) as exc:
                self.count_error(f"scrape:{url}", f"{type(exc).__name__}: {exc}")
                continue
            rows.extend(result.device_rows)
            self._pending.extend(result.server_counters)
        return rows

    def drain_server_counters(self) -> list[ServerCounters]:
        """Server counters gathered since the last call, oldest first."""
        out = list(self._pending)
        self._pending.clear()
        return out

    def close(self) -> None:
        """Forget scrapes in flight: each ends at its own deadline on its daemon thread, unwaited."""
        self._in_flight.clear()


def server_counters_table(counters: list[ServerCounters]) -> pa.Table:
    """Typed SERVER_COUNTERS table."""
    return pa.Table.from_pylist([asdict(c) for c in counters], schema=SERVER_COUNTERS)


def write_server_counters(spool: Path | str, counters: list[ServerCounters], name: str) -> list[Path]:
    """Write counters as atomic Parquet files under ``<spool>/server_counters/date=/node=/``."""
    groups: dict[tuple[str, str], list[ServerCounters]] = {}
    for c in counters:
        groups.setdefault((c.ts.strftime("%Y-%m-%d"), c.node), []).append(c)
    paths = []
    for (date, node), group in sorted(groups.items()):
        path = partition_dir(spool, SERVER_COUNTERS_KIND, date, node) / f"{safe_name(name)}.parquet"
        paths.append(write_atomic(server_counters_table(group), path))
    return paths

