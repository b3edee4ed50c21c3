"""The sampling agent behind ``tokenwatt collect``: backend -> bounded buffer -> Parquet spool.

(The command line is in collectors/agent.py.)

* **Drift-free schedule.** Tick ``k`` is due at ``start + k * interval_s`` on the
  monotonic clock. A tick whose time has passed by the time the previous one is
  done is skipped, never run late, and counted in ``missed_ticks``.
* **Bounded buffer.** Rows wait in memory for the flusher; past
  ``max_buffer_rows`` the oldest are dropped and counted in ``dropped_rows``
  (only if flushing fails or falls behind for a long time).
* **Periodic atomic flush.** A flusher thread writes every ``flush_interval_s``
  one file per (date, node) partition,
  ``<spool>/device_samples/date=YYYY-MM-DD/node=NAME/<node>-<start_us>-<seq>.parquet``;
  names sort by agent start then sequence and never collide across restarts.
  :func:`collectors.spool.write_atomic` renames only whole files, so ``kill -9``
  loses at most the rows of one flush interval and leaves no half-written
  ``*.parquet``. A failed write keeps its rows for the next flush.
* **Clean stop.** SIGTERM and SIGINT stop the loop, flush what is buffered and
  return exit status 0, or 1 when rows were lost (rejected, dropped or never written).
* **One bad row costs one row.** Each (date, node) file is written on its own; a row the spool
  cannot hold is rejected with its field and reason into ``<spool>/rejects/device_samples/``
  (collectors/rejects.py) and the other rows are written.
* **Own metrics.** ``--metrics-port`` serves Prometheus metrics (rows sampled,
  errors per device, last flush time, missed ticks, dropped rows, buffer size).

The main CLI calls :func:`add_collect_arguments` and :func:`run_collect`;
``python -m collectors.agent ...`` runs the same thing.
"""
from __future__ import annotations

import itertools
import logging
import math
import os
import select
import signal
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from collectors.base import Backend, default_node
from collectors.rejects import Reject, partition_rows, to_table, write_rejects
from collectors.spool import safe_name, write_partition

log = logging.getLogger("tokenwatt.collect")


@dataclass
class AgentStats:
    """Counters of one agent run (also served as Prometheus metrics)."""

    samples_total: int = 0          # device rows sampled
    sample_rounds: int = 0          # ticks actually sampled
    missed_ticks: int = 0           # ticks skipped because the previous one overran
    sample_errors: int = 0          # backend.sample() calls that raised
    dropped_rows: int = 0           # rows dropped from the bounded buffer
    rows_written: int = 0
    files_written: int = 0
    flush_errors: int = 0
    rows_rejected: int = 0          # rows the spool cannot hold, recorded under <spool>/rejects/
    reject_files: int = 0
    last_flush_unix_s: float = 0.0
    sample_cpu_s: float = 0.0       # CPU time of the sampling thread inside sample()+buffering
    started_unix_s: float = 0.0
    stopped_by: str = ""            # "duration" | "SIGTERM" | "SIGINT" | "stop()"


class Agent:
    """Sample ``backend`` every ``interval_s`` and flush rows into ``spool``."""

    def __init__(
        self,
        backend: Backend,
        spool: Path | str,
        node: str | None = None,
        interval_s: float = 1.0,
        flush_interval_s: float = 10.0,
        max_buffer_rows: int = 500_000,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if interval_s <= 0 or flush_interval_s <= 0:
            raise ValueError("interval_s and flush_interval_s must be > 0")
        if max_buffer_rows < 1:
            raise ValueError("max_buffer_rows must be >= 1")
        self.backend = backend
        self.spool = Path(spool)
        self.node = node or getattr(backend, "node", None) or default_node()
        self.interval_s = interval_s
        self.flush_interval_s = flush_interval_s
        self.max_buffer_rows = max_buffer_rows
        self.stats = AgentStats()
        self._clock = clock
        self._monotonic = monotonic
        self._buffer: deque[dict[str, Any]] = deque(maxlen=max_buffer_rows)
        self._counters: deque[Any] = deque(maxlen=max_buffer_rows)  # prometheus ServerCounters
        self.latest: dict[str, dict[str, Any]] = {}  # device_id -> its last sampled row (for /metrics)
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._seq = 0
        self._prefix = ""
        self._stopping = False
        self._stop_reason = ""
        self._flusher_stop = threading.Event()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)

    # -- control ----------------------------------------------------------

    def stop(self, reason: str = "stop()") -> None:
        """Ask :meth:`run` to flush and return; safe from any thread."""
        self._stop_reason = self._stop_reason or reason
        self._stopping = True
        try:
            os.write(self._wake_w, b"s")
        except (BlockingIOError, OSError):
            pass

    def _on_signal(self, signum: int, _frame: Any) -> None:
        # Only set flags here: the wakeup fd (set_wakeup_fd) already woke select().
        self._stop_reason = self._stop_reason or signal.Signals(signum).name
        self._stopping = True

    def _wait(self, seconds: float) -> None:
        """Sleep up to ``seconds``, returning early when stopped or signalled."""
        if seconds <= 0 or self._stopping:
            return
        try:
            ready, _, _ = select.select([self._wake_r], [], [], seconds)
        except InterruptedError:  # pragma: no cover - PEP 475 retries select itself
            return
        if ready:
            try:
                os.read(self._wake_r, 4096)
            except (BlockingIOError, OSError):
                pass

    # -- buffering --------------------------------------------------------

    def _add_rows(self, rows: list[dict[str, Any]], counters: list[Any]) -> None:
        with self._lock:
            overflow = len(self._buffer) + len(rows) - self.max_buffer_rows
            if overflow > 0:
                self.stats.dropped_rows += min(overflow, len(self._buffer) + len(rows))
            self._buffer.extend(rows)  # maxlen: the oldest fall off the left
            self._counters.extend(counters)
            self.stats.samples_total += len(rows)
            self.latest.update((r["device_id"], r) for r in rows if r.get("device_id") is not None)

    def buffered_rows(self) -> int:
        """Rows waiting for the next flush."""
        return len(self._buffer)

    def sample_once(self) -> int:
        """One tick: read the backend, buffer its rows. Returns the row count."""
        cpu0 = time.thread_time()
        try:
            rows = self.backend.sample()
        except Exception as exc:  # noqa: BLE001 - one bad tick must not kill the agent
            self.stats.sample_errors += 1
            if self.stats.sample_errors == 1 or self.stats.sample_errors % 100 == 0:
                log.exception("sampling failed (%d so far): %s", self.stats.sample_errors, exc)
            return 0
        drain = getattr(self.backend, "drain_server_counters", None)
        counters = drain() if callable(drain) else []
        take = getattr(self.backend, "take_rejects", None)  # rows a backend refused while parsing
        if callable(take):
            self._reject(take(), f"{self._prefix or self._name_prefix()}-scrape-{self.stats.sample_rounds:08d}")
        self._add_rows(rows, counters)
        self.stats.sample_rounds += 1
        self.stats.sample_cpu_s += time.thread_time() - cpu0
        return len(rows)

    # -- flushing ---------------------------------------------------------

    def flush(self) -> list[Path]:
        """Write everything buffered now, one atomic file per (date, node).

        Each (date, node) group is written on its own, so a failed write keeps only that group's rows
        for the next try; a row the spool cannot hold (bad name, value out of the schema's range) is
        rejected with its reason into ``<spool>/rejects/device_samples/`` and costs only itself.
        """
        with self._flush_lock:
            with self._lock:
                rows = list(self._buffer)
                counters = list(self._counters)
                self._buffer.clear()
                self._counters.clear()
            if not rows and not counters:
                return []
            self._seq += 1
            name = f"{self._prefix or self._name_prefix()}-{self._seq:06d}"
            groups, rejects = partition_rows(rows, "device_samples")
            paths: list[Path] = []
            keep: list[dict[str, Any]] = []
            for (date, node), group in sorted(groups.items()):
                table, good, bad = to_table(group, "device_samples")
                rejects.extend(bad)
                if not good:
                    continue
                try:
                    paths.append(write_partition(self.spool, "device_samples", date, node, table, name=name))
                    self.stats.rows_written += len(good)
                except Exception as exc:  # noqa: BLE001 - keep this group's rows for the next flush
                    self.stats.flush_errors += 1
                    keep.extend(good)
                    log.error("flush of %s/%s failed, %d rows kept for the next try: %s", date, node, len(good), exc)
            counters = self._write_counters(counters, name, paths)
            self._reject(rejects, name)
            if keep or counters:
                self._requeue(keep, counters)
            else:
                self.stats.last_flush_unix_s = self._clock()
            self.stats.files_written += len(paths)
            return paths

    def _write_counters(self, counters: list[Any], name: str, paths: list[Path]) -> list[Any]:
        """Write the server counters; returns those to keep for the next try (all, on failure)."""
        if not counters:
            return []
        from collectors.prometheus import write_server_counters

        try:
            paths.extend(write_server_counters(self.spool, counters, name))
        except Exception as exc:  # noqa: BLE001
            self.stats.flush_errors += 1
            log.error("server counters flush failed, kept for the next try: %s", exc)
            return counters
        return []

    def _reject(self, rejects: list[Reject], name: str) -> None:
        """Record rows that cannot be stored, with their reasons; they count as lost."""
        if not rejects:
            return
        self.stats.rows_rejected += len(rejects)
        for r in rejects[:3]:
            log.error("row rejected (%s): %s", r.field, r.reason)
        try:
            write_rejects(self.spool, "device_samples", name, rejects)
            self.stats.reject_files += 1
        except OSError as exc:
            log.error("could not record %d rejected rows: %s", len(rejects), exc)

    def rows_lost(self) -> int:
        """Rows sampled that did not reach the spool: rejected, dropped, or still buffered."""
        return self.stats.rows_rejected + self.stats.dropped_rows + self.buffered_rows()

    def _requeue(self, rows: list[dict[str, Any]], counters: list[Any]) -> None:
        with self._lock:
            total = len(rows) + len(self._buffer)
            if total > self.max_buffer_rows:
                self.stats.dropped_rows += total - self.max_buffer_rows
            self._buffer = deque(itertools.chain(rows, self._buffer), maxlen=self.max_buffer_rows)
            self._counters = deque(itertools.chain(counters, self._counters), maxlen=self.max_buffer_rows)

    def _name_prefix(self) -> str:
        self._prefix = f"{safe_name(self.node)}-{int(self._clock() * 1e6)}"
        return self._prefix

    def remove_stale_temp_files(self, older_than_s: float = 600.0) -> int:
        """Delete this node's hidden ``.*.tmp`` files left by a killed agent; returns how many."""
        root = self.spool / "device_samples"
        if not root.exists():
            return 0
        cutoff_s = time.time() - older_than_s
        removed = 0
        for tmp in root.glob(f"date=*/node=*/.{safe_name(self.node)}-*.tmp"):
            try:
                if tmp.stat().st_mtime < cutoff_s:
                    tmp.unlink()
                    removed += 1
            except OSError:
                pass
        return removed

    def _flusher(self) -> None:
        while not self._flusher_stop.wait(self.flush_interval_s):
            self.flush()

    # -- main loop ----------------------------------------------------------

    def run(self, duration_s: float | None = None, handle_signals: bool = True) -> AgentStats:
        """Sample until ``duration_s`` elapses or a stop/SIGTERM/SIGINT, then flush."""
        self.stats.started_unix_s = self._clock()
        self._name_prefix()
        if self.remove_stale_temp_files():
            log.info("removed temporary files left by an earlier, killed agent")
        in_main = threading.current_thread() is threading.main_thread()
        previous: dict[int, Any] = {}
        previous_wakeup = -1
        if handle_signals and in_main:
            for signum in (signal.SIGTERM, signal.SIGINT):
                previous[signum] = signal.signal(signum, self._on_signal)
            previous_wakeup = signal.set_wakeup_fd(self._wake_w, warn_on_full_buffer=False)
        flusher = threading.Thread(target=self._flusher, name="tokenwatt-flusher", daemon=True)
        flusher.start()
        log.info(
            "agent started: backend %s, node %s, every %g s, flush every %g s, spool %s",
            getattr(self.backend, "source", "?"), self.node, self.interval_s, self.flush_interval_s, self.spool,
        )
        try:
            self._loop(duration_s)
        finally:
            self._flusher_stop.set()
            flusher.join()
            self.flush()
            if handle_signals and in_main:
                signal.set_wakeup_fd(previous_wakeup)
                for signum, handler in previous.items():
                    signal.signal(signum, handler)
        self.stats.stopped_by = self._stop_reason or "duration"
        return self.stats

    def _loop(self, duration_s: float | None) -> None:
        start_s = self._monotonic()
        deadline_s = start_s + duration_s if duration_s is not None else math.inf
        tick = 0
        while not self._stopping:
            now_s = self._monotonic()
            if now_s >= deadline_s:
                return
            due_s = start_s + tick * self.interval_s
            if now_s < due_s:
                self._wait(min(due_s, deadline_s) - now_s)
                continue
            self.sample_once()
            tick += 1
            now_s = self._monotonic()
            next_tick = int((now_s - start_s) // self.interval_s) + 1
            if next_tick > tick:
                self.stats.missed_ticks += next_tick - tick
                tick = next_tick

    def close(self) -> None:
        """Close the wake pipe (the backend is the caller's to close)."""
        for fd in (self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass
