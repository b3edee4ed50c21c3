"""The OTLP receiver's journal: accepted request records are durable before a span is acknowledged.

**Durability.** A request's accepted records are appended to a journal segment (request-log JSON
lines, the format of docs/request-log.md) and fsynced *before* the 200 is sent, so a SIGKILL loses
no acknowledged span. Segments are rolled into the spool (atomic Parquet, one file per date and
node, named after the segment) every ``roll_interval_s``, every ``max_segment_records`` and at
exit; a segment left by a killed receiver is rolled at the next start (rewriting the same file
names, so a roll interrupted half way never duplicates rows). Request ids already spooled by a
receiver in the last ``dedupe_window_s`` are remembered, so an exporter's retry of a batch whose
answer was lost is not spooled twice.
"""
from __future__ import annotations

import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from collectors.requestlog import record_to_row, write_requests
from collectors.spool import list_files

log = logging.getLogger(__name__)

FILE_PREFIX = "otlp-"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class RequestJournal:
    """Records are durable (fsynced) when :meth:`append` returns; rolled into the spool later."""

    def __init__(self, spool: Path | str, state_dir: Path | str | None = None,
                 max_segment_records: int = 50_000, dedupe_window_s: float = 2 * 86400.0) -> None:
        self.spool = Path(spool)
        self.state = Path(state_dir) if state_dir else self.spool / ".otlp-receiver"
        self.state.mkdir(parents=True, exist_ok=True)
        self.max_segment_records = max_segment_records
        self._lock = threading.Lock()
        self._seq = 0
        self._closed = False
        self.seen: set[str] = set()
        for segment in sorted(self.state.glob("*.jsonl")):
            if segment.name != "rejected.jsonl":
                self._spool_segment(segment)
        self._load_seen(dedupe_window_s)
        self._open_segment()

    def _load_seen(self, window_s: float) -> None:
        cutoff = time.time() - window_s
        for f in list_files(self.spool, "requests"):
            if f.name.startswith(FILE_PREFIX) and f.stat().st_mtime >= cutoff:
                self.seen.update(pq.read_table(f, columns=["request_id"]).column(0).to_pylist())

    def _open_segment(self) -> None:
        self._seq += 1
        self._path = self.state / f"{time.time_ns()}-{os.getpid()}-{self._seq:06d}.jsonl"
        self._fh = open(self._path, "ab")
        self._count = 0
        _fsync_dir(self.state)

    def _spool_segment(self, segment: Path) -> int:
        """Write a closed segment's records into the spool, then remove it. A torn last line (the
        receiver was killed while writing it, before the fsync, so it was never acknowledged) is
        dropped."""
        rows = []
        with open(segment, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                try:
                    rows.append(record_to_row(json.loads(line)))
                except (ValueError, OverflowError, OSError) as exc:
                    log.warning("%s: unreadable journal line dropped: %s", segment, exc)
        if rows:
            result = write_requests(self.spool, rows, FILE_PREFIX + segment.stem)
            for rej in result.rejects:
                log.warning("%s: record refused by the spool schema: %s", segment, rej)
            if result.error is not None or result.unwritten:  # keep the journal: the next roll retries it
                raise OSError(f"{segment}: {len(result.unwritten)} rows not written: {result.error}")
        segment.unlink()
        _fsync_dir(self.state)
        return len(rows)

    def append(self, records: list[dict[str, Any]]) -> tuple[int, int]:
        """Journal the records not seen before; (accepted, duplicates). OSError if not durable."""
        with self._lock:
            if self._closed:
                raise OSError("the receiver is stopping")
            new: list[dict[str, Any]] = []
            for record in records:
                if record["request_id"] not in self.seen:
                    self.seen.add(record["request_id"])
                    new.append(record)
            if new:
                try:
                    self._fh.write(b"".join(json.dumps(r).encode() + b"\n" for r in new))
                    self._fh.flush()
                    os.fsync(self._fh.fileno())
                except OSError:
                    self.seen.difference_update(r["request_id"] for r in new)
                    raise
                self._count += len(new)
                if self._count >= self.max_segment_records:
                    self._roll_locked()
            return len(new), len(records) - len(new)

    def _roll_locked(self) -> None:
        if self._count == 0:
            return
        self._fh.close()
        self._spool_segment(self._path)
        self._open_segment()

    def roll(self) -> None:
        """Move the journal's records into the spool now."""
        with self._lock:
            self._roll_locked()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._roll_locked()
            self._fh.close()
            if self._count == 0:
                self._path.unlink(missing_ok=True)
