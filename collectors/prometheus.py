"""Prometheus backend: scrape the exporters a fleet already runs.

Each URL's exposition text is parsed by :mod:`collectors.exposition` (the metric and label
mapping for dcgm-exporter, the AMD device-metrics-exporter and vLLM/SGLang server counters, shared
with the history import). Device rows go to the agent; server counters are queued for
:meth:`PrometheusBackend.drain_server_counters` and written as the spool kind ``server_counters``.

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
from collections import deque
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import pyarrow as pa

from collectors.base import BackendBase, BackendUnavailable
from collectors.exposition import (  # noqa: F401 - re-exported
    SERVER_COUNTERS,
    MigSplitter,
    ScrapeResult,
    ServerCounters,
    parse_exposition,
)
from collectors.names import host_name
from collectors.http_fetch import DEFAULT_MAX_BYTES, fetch_text
from collectors.rejects import Reject
from collectors.spool import partition_dir, safe_name, write_atomic

SERVER_COUNTERS_KIND = "server_counters"
#: longest one sample() waits for its scrapes (a slower one is collected at the next sample)
DEFAULT_WAIT_S = 0.5
_LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", ""}


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
        self._mig = MigSplitter()
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
        self._rejected: list[Reject] = []

    def take_rejects(self) -> list[Reject]:
        """Series skipped since the last call (bad device index, host name, value), as rejected rows:
        the agent records them under <spool>/rejects/ and counts them as lost."""
        out, self._rejected = self._rejected, []
        return out

    def _node_for(self, url: str) -> str:
        host = urllib.parse.urlsplit(url).hostname or ""
        return self.node if host in _LOCAL_HOSTS else host_name(host, self.aliases)

    def scrape(self, url: str) -> ScrapeResult:
        """Fetch and parse one URL (errors propagate)."""
        text = self._fetch(url, self.timeout_s, self.max_bytes)
        ts = datetime.fromtimestamp(self._clock(), tz=timezone.utc)
        return parse_exposition(text, ts, self._node_for(url), url, self.aliases, self._mig)

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
            if result.skipped:  # the rest of the page is kept; each skipped series is a rejected row
                self.count_error(f"series:{url}", f"{len(result.skipped)} series skipped, e.g. {result.skipped[0]}")
                self._rejected += [Reject(_skip_field(s), f"{url}: {s}", None) for s in result.skipped]
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


def _skip_field(skipped: str) -> str:
    """The row field a skipped series was refused for (exposition's reason text)."""
    reason = skipped.rsplit("}: ", 1)[-1]
    if "device index" in reason:
        return "device_index"
    if reason.startswith("host label"):
        return "node"
    return "value"
