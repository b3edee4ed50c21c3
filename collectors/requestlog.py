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
  the same spool files instead of duplicating rows.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import pyarrow as pa

from collectors.base import default_node
from collectors.schema import REQUESTS, TASKS, TIERS
from collectors.spool import safe_name, write_partition

log = logging.getLogger(__name__)

STATUSES = ("ok", "error", "aborted")

#: REQUESTS column -> accepted JSON field names, first present wins
_TIME_FIELDS: dict[str, tuple[str, ...]] = {
    "arrival_ts": ("arrival_time",),
    "scheduled_ts": ("scheduled_time", "first_scheduled_time"),
    "first_token_ts": ("first_token_time",),
    "finish_ts": ("finished_time", "last_token_time"),
}


class RequestLogError(ValueError):
    """A request-log record that cannot become a REQUESTS row."""


def parse_time(value: Any, field_name: str = "time") -> datetime | None:
    """Epoch seconds or ISO-8601 (UTC if naive) -> aware UTC datetime; None stays None."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise RequestLogError(f"{field_name}: expected epoch seconds or ISO-8601, got {value!r}")
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise RequestLogError(f"{field_name}: not a finite number: {value!r}")
        return datetime.fromtimestamp(float(value), tz=timezone.utc)
    if isinstance(value, str):
        text = value.strip()
        try:
            parsed = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
        except ValueError:
            try:
                return parse_time(float(text), field_name)
            except ValueError:
                raise RequestLogError(f"{field_name}: not epoch seconds or ISO-8601: {value!r}") from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=timezone.utc)
        return parsed.astimezone(timezone.utc)
    raise RequestLogError(f"{field_name}: expected epoch seconds or ISO-8601, got {type(value).__name__}")


def _tokens(record: Mapping[str, Any], name: str) -> int:
    usage = record.get("usage")
    value = usage.get(name) if isinstance(usage, Mapping) and name in usage else record.get(name)
    if value is None:
        raise RequestLogError(f"usage.{name} is required")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value) or value < 0:
        raise RequestLogError(f"usage.{name}: expected a non-negative integer, got {value!r}")
    return int(value)


def _optional_str(record: Mapping[str, Any], name: str) -> str | None:
    value = record.get(name)
    if value is None or value == "":
        return None
    return str(value)


def record_to_row(record: Mapping[str, Any], default_node_name: str | None = None) -> dict[str, Any]:
    """One request-log record -> one REQUESTS row dict. Raises :class:`RequestLogError`."""
    if not isinstance(record, Mapping):
        raise RequestLogError(f"expected a JSON object, got {type(record).__name__}")
    request_id = _optional_str(record, "request_id")
    if request_id is None:
        raise RequestLogError("request_id is required")
    model = _optional_str(record, "model")
    if model is None:
        raise RequestLogError("model is required")
    times: dict[str, datetime | None] = {}
    for column, names in _TIME_FIELDS.items():
        raw = next((record[n] for n in names if record.get(n) is not None), None)
        times[column] = parse_time(raw, names[0])
    parse_time(record.get("queued_time"), "queued_time")  # validated, not stored
    if times["arrival_ts"] is None:
        raise RequestLogError("arrival_time is required")
    if times["finish_ts"] is None:
        raise RequestLogError("finished_time is required")
    previous_name, previous = "arrival_time", times["arrival_ts"]
    for column in ("scheduled_ts", "first_token_ts", "finish_ts"):
        current = times[column]
        if current is not None:
            if current < previous:
                raise RequestLogError(f"{_TIME_FIELDS[column][0]} is before {previous_name}")
            previous_name, previous = _TIME_FIELDS[column][0], current
    status = _optional_str(record, "status") or "ok"
    if status not in STATUSES:
        raise RequestLogError(f"status: expected one of {STATUSES}, got {status!r}")
    task = _optional_str(record, "task")
    if task is not None and task not in TASKS:
        raise RequestLogError(f"task: expected one of {TASKS}, got {task!r}")
    tier = _optional_str(record, "tier")
    if tier is not None and tier not in TIERS:
        raise RequestLogError(f"tier: expected one of {TIERS}, got {tier!r}")
    node = _optional_str(record, "node") or default_node_name
    if node is None:
        raise RequestLogError("node is required (in the record or as the logger's node)")
    return {
        "request_id": request_id,
        "node": node,
        "replica_id": _optional_str(record, "replica_id"),
        "model": model,
        "task": task,
        "language": _optional_str(record, "language"),
        "tier": tier,
        **times,
        "prompt_tokens": _tokens(record, "prompt_tokens"),
        "completion_tokens": _tokens(record, "completion_tokens"),
        "status": status,
    }


def requests_table(rows: list[dict[str, Any]]) -> pa.Table:
    """Typed REQUESTS table from row dicts."""
    return pa.Table.from_pylist(rows, schema=REQUESTS)


def write_requests(spool: Path | str, rows: list[dict[str, Any]], name: str) -> list[Path]:
    """Write rows as one atomic file per (arrival date, node) partition, all named ``name``."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["arrival_ts"].strftime("%Y-%m-%d"), row["node"]), []).append(row)
    return [
        write_partition(spool, "requests", date, node, requests_table(group), name=name)
        for (date, node), group in sorted(groups.items())
    ]


@dataclass
class RequestLoggerStats:
    """Counters of a :class:`RequestLogger`."""

    logged: int = 0
    rejected: int = 0
    written_rows: int = 0
    dropped_rows: int = 0
    write_errors: int = 0
    files: list[Path] = field(default_factory=list)


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
    ) -> None:
        if flush_every_n < 1 or flush_interval_s <= 0:
            raise ValueError("flush_every_n must be >= 1 and flush_interval_s > 0")
        self.spool = Path(spool)
        self.node = node or default_node()
        self.flush_every_n = flush_every_n
        self.flush_interval_s = flush_interval_s
        self.max_buffer_rows = max_buffer_rows
        self.stats = RequestLoggerStats()
        self._clock = clock
        self._prefix = f"{safe_name(self.node)}-{int(clock() * 1e6)}-{os.getpid()}"
        self._seq = 0
        self._buffer: deque[dict[str, Any]] = deque()
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
        """Record one request given as a request-log JSON object (already parsed)."""
        try:
            row = record_to_row(record, self.node)
        except RequestLogError as exc:
            with self._lock:
                self.stats.rejected += 1
            log.warning("request log record rejected: %s", exc)
            return False
        flush_inline = False
        with self._lock:
            if self._closed:
                raise RuntimeError("RequestLogger is closed")
            self._append_locked([row])
            self.stats.logged += 1
            if len(self._buffer) >= self.flush_every_n:
                if self._thread is not None:
                    self._wake.notify()
                else:
                    flush_inline = True
        if flush_inline or (self._thread is None and self._due()):
            self.flush()
        return True

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
        """Write everything buffered now; returns the files written."""
        with self._write_lock:
            with self._lock:
                rows = list(self._buffer)
                self._buffer.clear()
                self._last_flush_s = time.monotonic()
                if not rows:
                    return []
                self._seq += 1
                name = f"{self._prefix}-{self._seq:06d}"
            try:
                paths = write_requests(self.spool, rows, name)
            except Exception as exc:  # noqa: BLE001 - keep the rows, try again next flush
                with self._lock:
                    self.stats.write_errors += 1
                    pending = list(self._buffer)
                    self._buffer.clear()
                    self._append_locked(rows)
                    self._append_locked(pending)
                log.error("request log flush failed, %d rows kept for retry: %s", len(rows), exc)
                return []
            with self._lock:
                self.stats.written_rows += len(rows)
                self.stats.files.extend(paths)
            return paths

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
        return value.timestamp()
    return value


@dataclass
class ConvertResult:
    """What :func:`convert_jsonl` did."""

    rows_written: int
    bad_lines: list[tuple[int, str]]  # (1-based line number, reason)
    files: list[Path]


def convert_jsonl(
    path: Path | str, spool: Path | str, node: str | None = None, batch_rows: int = 200_000
) -> ConvertResult:
    """Convert a request-log ``.jsonl`` file into REQUESTS files in the spool.

    Invalid lines are skipped and reported (line number and reason); blank lines
    are ignored. ``node`` fills records without one. File names are
    ``<stem>-<content hash>-<part>``, so a rerun on the same file overwrites
    rather than duplicates.
    """
    path = Path(path)
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    prefix = f"{safe_name(path.stem)}-{digest.hexdigest()[:12]}"
    bad: list[tuple[int, str]] = []
    files: list[Path] = []
    batch: list[dict[str, Any]] = []
    written = 0
    part = 0

    def write_batch() -> None:
        nonlocal part, written
        if batch:
            files.extend(write_requests(spool, batch, f"{prefix}-{part:04d}"))
            written += len(batch)
            part += 1
            batch.clear()

    with open(path, encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                batch.append(record_to_row(json.loads(line), node))
            except json.JSONDecodeError as exc:
                bad.append((line_no, f"invalid JSON: {exc.msg}"))
            except RequestLogError as exc:
                bad.append((line_no, str(exc)))
            if len(batch) >= batch_rows:
                write_batch()
    write_batch()
    return ConvertResult(rows_written=written, bad_lines=bad, files=files)
