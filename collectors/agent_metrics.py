"""The agent's own Prometheus metrics (``tokenwatt collect --metrics-port``): rows sampled, written
and rejected, errors per device, last flush time, missed ticks, dropped rows, buffer size."""
from __future__ import annotations

from typing import Any, Iterator


class AgentMetricsCollector:
    """A prometheus_client collector reading the agent's counters at scrape time."""

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
        yield GaugeMetricFamily(
            "tokenwatt_agent_last_flush_timestamp_seconds", "Unix time of the last successful flush.",
            value=s.last_flush_unix_s,
        )
        yield GaugeMetricFamily("tokenwatt_agent_buffered_rows", "Rows waiting for the next flush.", value=self.agent.buffered_rows())


def serve_metrics(agent: Any, port: int, addr: str = "127.0.0.1") -> Any:
    """Serve the agent's metrics on ``addr:port`` (0 = any free port); returns the server."""
    from prometheus_client import CollectorRegistry, start_http_server

    registry = CollectorRegistry()
    registry.register(AgentMetricsCollector(agent))
    server, _thread = start_http_server(port, addr=addr, registry=registry)
    return server
