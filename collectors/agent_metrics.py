"""The agent's Prometheus metrics (``tokenwatt collect --metrics-port``).

* Its own health: rows sampled, written and rejected, errors per device, missed ticks, dropped rows,
  buffer size, start and last-flush times.
* What it reads, per device (labels ``node``, ``device``, ``chip``, ``vendor``), from the last sample:
  ``tokenwatt_device_power_watts`` (as the vendor reports it: ``power_kind`` says 1 s average or
  instant), ``tokenwatt_device_energy_joules_total`` (the device's own energy counter, only for devices
  that have one; it may reset on a driver reload, which ``rate()`` handles), and
  ``tokenwatt_device_sample_timestamp_seconds``.
* The process: prometheus_client's process and platform collectors (CPU seconds, resident memory,
  open file descriptors, start time, Python version).

A timestamp is exported only once its event happened: no ``last_flush_timestamp_seconds 0`` before the
first flush (a 0 reads as "50 years stale" and fires a staleness alert).
"""
from __future__ import annotations

import math
from typing import Any, Iterator

DEVICE_LABELS = ["node", "device", "chip", "vendor"]


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _unix_s(ts: Any) -> float | None:
    """A sample's ``ts`` (datetime, or Unix seconds) as Unix seconds."""
    if ts is None:
        return None
    if hasattr(ts, "timestamp"):
        return float(ts.timestamp())
    return float(ts) if _finite(ts) else None


class AgentMetricsCollector:
    """A prometheus_client collector reading the agent's counters and last samples at scrape time."""

    def __init__(self, agent: Any) -> None:
        self.agent = agent

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        s = self.agent.stats
        yield CounterMetricFamily("tokenwatt_agent_samples", "Device rows sampled.", value=s.samples_total)
        yield CounterMetricFamily("tokenwatt_agent_missed_ticks", "Ticks skipped because sampling overran.", value=s.missed_ticks)
        yield CounterMetricFamily("tokenwatt_agent_dropped_rows", "Rows dropped from the full buffer.", value=s.dropped_rows)
        yield CounterMetricFamily("tokenwatt_agent_sample_errors", "Backend sample() calls that raised.", value=s.sample_errors)
        yield CounterMetricFamily("tokenwatt_agent_flush_errors", "Failed spool writes.", value=s.flush_errors)
        yield CounterMetricFamily("tokenwatt_agent_rows_written", "Rows written to the spool.", value=s.rows_written)
        yield CounterMetricFamily("tokenwatt_agent_rows_rejected",
                                  "Rows the spool cannot hold, kept under <spool>/rejects/.", value=s.rows_rejected)
        errors = CounterMetricFamily(
            "tokenwatt_agent_device_errors", "Failed device reads, per device (or scrape URL).", labels=["device"]
        )
        for device, count in sorted(getattr(self.agent.backend, "errors_by_device", {}).copy().items()):
            errors.add_metric([device], count)
        yield errors
        # timestamps: a sample only once the event happened (never 0)
        flush = GaugeMetricFamily("tokenwatt_agent_last_flush_timestamp_seconds",
                                  "Unix time of the last successful flush (absent before the first).")
        if s.last_flush_unix_s > 0:
            flush.add_metric([], s.last_flush_unix_s)
        yield flush
        start = GaugeMetricFamily("tokenwatt_agent_start_timestamp_seconds",
                                  "Unix time the agent started sampling (absent before).")
        if s.started_unix_s > 0:
            start.add_metric([], s.started_unix_s)
        yield start
        yield GaugeMetricFamily("tokenwatt_agent_buffered_rows", "Rows waiting for the next flush.", value=self.agent.buffered_rows())
        yield from self._devices()

    def _devices(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        power = GaugeMetricFamily("tokenwatt_device_power_watts", "Device power at the last sample, as the "
                                  "vendor reports it (label power_kind: avg_1s, instant, ...).", unit="watts",
                                  labels=DEVICE_LABELS + ["power_kind"])
        energy = CounterMetricFamily("tokenwatt_device_energy_joules", "The device's own cumulative energy "
                                     "counter at the last sample (devices that have one; resets on driver reload).",
                                     unit="joules", labels=DEVICE_LABELS)
        seen = GaugeMetricFamily("tokenwatt_device_sample_timestamp_seconds",
                                 "Unix time of the device's last sample.", labels=DEVICE_LABELS)
        latest = dict(getattr(self.agent, "latest", {}))  # a copy: the sampling thread updates it
        for device_id, row in sorted(latest.items()):
            labels = [str(row.get("node") or ""), str(device_id), str(row.get("chip") or ""),
                      str(row.get("vendor") or "")]
            if _finite(row.get("power_w")):
                power.add_metric(labels + [str(row.get("power_kind") or "unknown")], float(row["power_w"]))
            if _finite(row.get("energy_counter_j")) and row["energy_counter_j"] >= 0:
                energy.add_metric(labels, float(row["energy_counter_j"]))
            t = _unix_s(row.get("ts"))
            if t is not None and t > 0:
                seen.add_metric(labels, t)
        yield power
        yield energy
        yield seen


def serve_metrics(agent: Any, port: int, addr: str = "127.0.0.1") -> Any:
    """Serve the agent's metrics, and the process's, on ``addr:port`` (0 = any free port); returns
    the server."""
    from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector, start_http_server

    registry = CollectorRegistry()
    registry.register(AgentMetricsCollector(agent))
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    server, _thread = start_http_server(port, addr=addr, registry=registry)
    return server
