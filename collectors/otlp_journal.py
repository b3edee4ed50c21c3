"""The OTLP receiver's journal: accepted request records are durable before a span is acknowledged.

**Durability.** A request's accepted records are appended to a journal segment (request-log JSON
lines, the format of docs/request-log.md) and fsynced *before* the 200 is sent, so a SIGKILL loses
no acknowledged span. Segments are rolled into the spool (atomic Parquet, one file per date and
node, named after the segment) every ``roll_interval_s``, every ``max_segment_records`` and at
exit; a segment left by a killed receiver is rolled at the next start (rewriting the same file
names, so a roll interrupted half way never duplicates rows). Request ids already spooled by a
receiver in the last ``dedupe_window_s`` are remembered, so an exporter's retry of a batch whose
answer was lost is not spooled twice.

**Disaggregated requests** (SGLang prefill and decode spans, :mod:`collectors.otlp_disagg`): each
half is journaled as it comes; a roll merges the halves of a request into one row and carries a
half still waiting for its other (up to ``pair_wait_s``) into the new segment, fsynced before the
old segment is removed, so a waiting half survives a restart too.
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

from collectors.otlp_disagg import PAIR_WAIT_S, half_key, pair, stamp
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


def _read(segment: Path) -> list[dict[str, Any]]:
    """A segment's records. A torn last line (the receiver was killed while writing it, before the
    fsync, so it was never acknowledged) is dropped."""
    records = []
    with open(segment, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            try:
                record = json.loads(line)
            except ValueError as exc:
                log.warning("%s: unreadable journal line dropped: %s", segment, exc)
                continue
            if isinstance(record, dict) and isinstance(record.get("request_id"), str):
                records.append(record)
            else:
                log.warning("%s: journal line without a request id dropped", segment)
    return records


class RequestJournal:
    """Records are durable (fsynced) when :meth:`append` returns; rolled into the spool later."""

    def __init__(self, spool: Path | str, state_dir: Path | str | None = None,
                 max_segment_records: int = 50_000, dedupe_window_s: float = 2 * 86400.0,
                 pair_wait_s: float = PAIR_WAIT_S) -> None:
        self.spool = Path(spool)
        self.state = Path(state_dir) if state_dir else self.spool / ".otlp-receiver"
        self.state.mkdir(parents=True, exist_ok=True)
        self.max_segment_records = max_segment_records
        self.pair_wait_s = pair_wait_s
        self._lock = threading.Lock()
        self._seq = 0
        self._closed = False
        self.seen: set[str] = set()
        old = [s for s in sorted(self.state.glob("*.jsonl")) if s.name != "rejected.jsonl"]
        waiting: list[dict[str, Any]] = []
        for segment in old:  # halves waiting in one segment may pair with the next one's
            waiting = self._spool_records(segment, waiting + _read(segment))
        self._load_seen(dedupe_window_s)
        self._open_segment(waiting)
        for segment in old:
            segment.unlink()
        if old:
            _fsync_dir(self.state)

    def _load_seen(self, window_s: float) -> None:
        cutoff = time.time() - window_s
        for f in list_files(self.spool, "requests"):
            if f.name.startswith(FILE_PREFIX) and f.stat().st_mtime >= cutoff:
                self.seen.update(pq.read_table(f, columns=["request_id"]).column(0).to_pylist())

    def _open_segment(self, waiting: list[dict[str, Any]] | None = None) -> None:
        """A new segment, holding (fsynced) the halves still waiting for their other half."""
        self._seq += 1
        self._path = self.state / f"{time.time_ns()}-{os.getpid()}-{self._seq:06d}.jsonl"
        self._fh = open(self._path, "ab")
        self._count = 0
        if waiting:
            self._write(waiting)
            self.seen.update(half_key(r) for r in waiting)
        _fsync_dir(self.state)

    def _write(self, records: list[dict[str, Any]]) -> None:
        self._fh.write(b"".join(json.dumps(r).encode() + b"\n" for r in records))
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._count += len(records)

    def _spool_records(self, segment: Path, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Write a segment's records (halves paired) into the spool, named after the segment; returns
        the halves still waiting. The caller removes the segment once they are journaled again."""
        complete, waiting = pair(records, time.time(), self.pair_wait_s)
        rows = []
        for record in complete:
            try:
                rows.append(record_to_row(record))
            except (ValueError, OverflowError, OSError) as exc:
                log.warning("%s: request %r dropped: %s", segment, record.get("request_id"), exc)
        if rows:
            result = write_requests(self.spool, rows, FILE_PREFIX + segment.stem)
            for rej in result.rejects:
                log.warning("%s: record refused by the spool schema: %s", segment, rej)
            if result.error is not None or result.unwritten:  # keep the journal: the next roll retries it
                raise OSError(f"{segment}: {len(result.unwritten)} rows not written: {result.error}")
        return waiting

    def append(self, records: list[dict[str, Any]]) -> tuple[int, int]:
        """Journal the records not seen before; (accepted, duplicates). OSError if not durable."""
        with self._lock:
            if self._closed:
                raise OSError("the receiver is stopping")
            new: list[dict[str, Any]] = []
            for record in records:
                key = half_key(record)
                if record["request_id"] not in self.seen and key not in self.seen:
                    self.seen.add(key)
                    new.append(stamp(record))
            if new:
                try:
                    self._write(new)
                except OSError:
                    self.seen.difference_update(half_key(r) for r in new)
                    raise
                if self._count >= self.max_segment_records:
                    self._roll_locked()
            return len(new), len(records) - len(new)

    def _roll_locked(self) -> None:
        if self._count == 0:
            return
        self._fh.close()
        segment = self._path
        waiting = self._spool_records(segment, _read(segment))
        self._open_segment(waiting)
        segment.unlink()
        _fsync_dir(self.state)

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
