"""Request telemetry from inference servers: a JSON Lines log schema -> REQUESTS rows.

One JSON object per finished (or failed) request; the field names follow vLLM's
request stats and the OpenAI ``usage`` object, plus a few tokenwatt fields.
The full description is in ``docs/request-log.md``; in short::

    {"request_id": "cmpl-8f1c", "model": "llama-3.1-70b",
     "arrival_time": 1718000000.125, "queued_time": 1718000000.126,
     "scheduled_time": 1718000000.140, "first_token_time": 1718000000.310,
     "finished_time": 1718000002.900,
     "usage": {"prompt_tokens": 812, "completion_tokens": 164},
     "replica_id": "llama70b-r3", "node": "gpu-node-07",
     "task": "chat", "language": "en", "tier": "api", "status": "ok"}

Times are epoch seconds (int or float) or ISO-8601 strings (``Z`` or an offset;
a naive string is read as UTC).

Two ways in:

* :class:`RequestLogger` -- an inference server calls ``log(...)`` once per
  request; rows are buffered and written as atomic Parquet files (kind
  ``requests``) into the spool every ``flush_every_n`` rows or
  ``flush_interval_s`` seconds, by a background thread, so ``log`` never waits
  on the disk.
* :func:`convert_jsonl` -- convert an existing ``.jsonl`` file; file names are
  derived from the file's content, so converting the same file twice rewrites
  the same spool files instead of duplicating rows (collectors/request_convert.py).

Each record is checked by collectors/request_record.py (a record is a row or a reason, nothing is
raised into the server); rows are written by collectors/request_spool.py, where a row the spool
cannot hold costs only itself. Rejected records are kept with their reasons under
``<spool>/rejects/requests/``.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from collectors.base import default_node
from collectors.names import clean_identifier, host_name
from collectors.rejects import Reject, write_rejects
from collectors.request_convert import ConvertResult, convert_jsonl  # noqa: F401 (re-exported)
from collectors.request_record import STATUSES, TIME_FIELDS, RequestLogError, parse_time, record_to_row  # noqa: F401
from collectors.request_spool import WriteResult, plain_record, requests_table, write_requests  # noqa: F401
from collectors.spool import safe_name

log = logging.getLogger(__name__)

#: rejected records kept in memory for the next rejects file; more are only counted
MAX_PENDING_REJECTS = 10_000


@dataclass
class RequestLoggerStats:
    """Counters of a :class:`RequestLogger`."""

    logged: int = 0
    rejected: int = 0
    written_rows: int = 0
    dropped_rows: int = 0
    write_errors: int = 0
    files: list[Path] = field(default_factory=list)
    #: the reason of the last rejected record ("field: why")
    last_reject: str = ""
    reject_files: list[Path] = field(default_factory=list)


class RequestLogger:
    """Buffer per-request rows and write them into the spool as atomic Parquet files.

    Usage inside an inference server (create it after any worker fork)::

        logger = RequestLogger("/var/spool/tokenwatt", node="gpu-node-07")
        ...
        logger.log(request_id=rid, model=name, arrival_time=t0, first_token_time=t1,
                   finished_time=t2, prompt_tokens=p, completion_tokens=c,
                   replica_id="llama70b-r3", task="chat", tier="api")
        ...
        logger.close()  # flushes what is left

    A flush happens when ``flush_every_n`` rows are buffered or
    ``flush_interval_s`` has passed since the last one. With ``background=True``
    (the default) a daemon thread does the writing; ``log`` only appends. A
    failed write keeps its rows for the next try; the buffer holds at most
    ``max_buffer_rows`` (oldest dropped, counted in ``stats.dropped_rows``).
    File names ``<node>-<start_us>-<pid>-<seq>`` sort by time and never collide.

    Node names (``node`` and each record's) follow the one host-name policy,
    :func:`collectors.names.host_name`: ``GPU-7.example.internal`` is logged as ``gpu-7``, or as
    what ``aliases`` (:func:`collectors.names.load_host_aliases`) maps it to, the name the device
    exporters' rows carry.
    """

    def __init__(
        self,
        spool: Path | str,
        node: str | None = None,
        flush_every_n: int = 1000,
        flush_interval_s: float = 10.0,
        background: bool = True,
        max_buffer_rows: int = 1_000_000,
        clock: Callable[[], float] = time.time,
        aliases: Mapping[str, str] | None = None,
    ) -> None:
        if flush_every_n < 1 or flush_interval_s <= 0:
            raise ValueError("flush_every_n must be >= 1 and flush_interval_s > 0")
        self.spool = Path(spool)
        self.aliases = dict(aliases or {})
        self.node = host_name(clean_identifier("node", node or default_node()), self.aliases)
        self.flush_every_n = flush_every_n
        self.flush_interval_s = flush_interval_s
        self.max_buffer_rows = max_buffer_rows
        self.stats = RequestLoggerStats()
        self._clock = clock
        self._prefix = f"{safe_name(self.node)}-{int(clock() * 1e6)}-{os.getpid()}"
        self._seq = 0
        self._buffer: deque[dict[str, Any]] = deque()
        self._rejects: list[Reject] = []
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._last_flush_s = time.monotonic()
        self._closed = False
        self._thread: threading.Thread | None = None
        if background:
            self._thread = threading.Thread(target=self._run, name="tokenwatt-requestlog", daemon=True)
            self._thread.start()

    # -- producer side ----------------------------------------------------

    def log(
        self,
        request_id: str,
        model: str,
        arrival_time: float | str | datetime,
        finished_time: float | str | datetime,
        prompt_tokens: int,
        completion_tokens: int,
        *,
        queued_time: float | str | datetime | None = None,
        scheduled_time: float | str | datetime | None = None,
        first_token_time: float | str | datetime | None = None,
        replica_id: str | None = None,
        node: str | None = None,
        task: str | None = None,
        language: str | None = None,
        tier: str | None = None,
        status: str = "ok",
    ) -> bool:
        """Record one request; False (and counted as rejected) if it is invalid."""
        record = {
            "request_id": request_id,
            "model": model,
            "arrival_time": _epoch(arrival_time),
            "queued_time": _epoch(queued_time),
            "scheduled_time": _epoch(scheduled_time),
            "first_token_time": _epoch(first_token_time),
            "finished_time": _epoch(finished_time),
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens},
            "replica_id": replica_id,
            "node": node,
            "task": task,
            "language": language,
            "tier": tier,
            "status": status,
        }
        return self.log_record(record)

    def log_record(self, record: Mapping[str, Any]) -> bool:
        """Record one request given as a request-log JSON object (already parsed).

        Returns False for a record that cannot be kept (its reason goes to ``stats.last_reject`` and
        to the next rejects file); never raises into the server.
        """
        try:
            row = record_to_row(record, self.node, self.aliases)
        except RequestLogError as exc:
            return self._reject(Reject(exc.field, str(exc), plain_record(record)))
        except Exception as exc:  # noqa: BLE001 - a record must never take the server down
            return self._reject(Reject("", f"unexpected {type(exc).__name__}: {exc}", plain_record(record)))
        flush_inline = False
        with self._lock:
            if self._closed:
                closed = True
            else:
                closed = False
                self._append_locked([row])
                self.stats.logged += 1
                if len(self._buffer) >= self.flush_every_n:
                    if self._thread is not None:
                        self._wake.notify()
                    else:
                        flush_inline = True
        if closed:
            return self._reject(Reject("", "the RequestLogger is closed", plain_record(record)))
        if flush_inline or (self._thread is None and self._due()):
            self.flush()
        return True

    def _reject(self, *rejects: Reject) -> bool:
        with self._lock:
            self.stats.rejected += len(rejects)
            self.stats.last_reject = rejects[-1].reason
            room = MAX_PENDING_REJECTS - len(self._rejects)
            self._rejects.extend(rejects[:max(room, 0)])
        log.warning("request log record rejected: %s", rejects[-1].reason)
        return False

    def _append_locked(self, rows: Iterable[dict[str, Any]]) -> None:
        for row in rows:
            if len(self._buffer) >= self.max_buffer_rows:
                self._buffer.popleft()
                self.stats.dropped_rows += 1
            self._buffer.append(row)

    def _due(self) -> bool:
        return time.monotonic() - self._last_flush_s >= self.flush_interval_s

    # -- writer side ------------------------------------------------------

    def flush(self) -> list[Path]:
        """Write everything buffered now; returns the files written.

        A row the spool cannot hold is rejected (with its reason) and costs only itself; a partition
        whose write fails keeps its rows for the next flush.
        """
        with self._write_lock:
            with self._lock:
                rows = list(self._buffer)
                self._buffer.clear()
                rejects, self._rejects = self._rejects, []
                self._last_flush_s = time.monotonic()
                if not rows and not rejects:
                    return []
                self._seq += 1
                name = f"{self._prefix}-{self._seq:06d}"
            result = write_requests(self.spool, rows, name)
            with self._lock:
                if result.unwritten:
                    self.stats.write_errors += 1
                    pending = list(self._buffer)
                    self._buffer.clear()
                    self._append_locked(result.unwritten)
                    self._append_locked(pending)
                self.stats.written_rows += len(rows) - len(result.unwritten) - len(result.rejects)
                self.stats.files.extend(result.files)
            if result.unwritten:
                log.error("request log flush failed, %d rows kept for retry: %s", len(result.unwritten), result.error)
            if result.rejects:
                with self._lock:
                    self.stats.rejected += len(result.rejects)
                    self.stats.last_reject = result.rejects[-1].reason
                log.warning("%d request rows refused by the spool schema: %s", len(result.rejects),
                            result.rejects[-1].reason)
                rejects = rejects + result.rejects
            self._write_rejects(rejects, name)
            return result.files

    def _write_rejects(self, rejects: list[Reject], name: str) -> None:
        try:
            path = write_rejects(self.spool, "requests", name, rejects)
        except OSError as exc:
            log.error("could not record %d rejected request records: %s", len(rejects), exc)
            return
        if path is not None:
            with self._lock:
                self.stats.reject_files.append(path)

    def _run(self) -> None:
        """Background writer: flush when ``flush_every_n`` rows wait or the interval is up."""
        while True:
            with self._lock:
                while not self._closed:
                    pending = len(self._buffer)
                    if pending >= self.flush_every_n or (pending and self._due()):
                        break
                    elapsed_s = time.monotonic() - self._last_flush_s
                    wait_s = self.flush_interval_s - elapsed_s if pending else self.flush_interval_s
                    self._wake.wait(max(wait_s, 0.001))
                closed = self._closed
            if closed:
                return  # close() does the final flush
            self.flush()

    def close(self) -> None:
        """Flush what is left and stop the background thread. Safe to call twice."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._wake.notify()
        if self._thread is not None:
            self._thread.join()
        self.flush()

    def __enter__(self) -> RequestLogger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _epoch(value: float | str | datetime | None) -> float | str | None:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        try:
            return value.timestamp()
        except (OverflowError, ValueError, OSError):
            return value.isoformat()
    return value
