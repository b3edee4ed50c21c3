"""`tokenwatt receive otlp`: an OTLP/HTTP trace receiver that spools one REQUESTS row per request span.

``POST /v1/traces`` with an ``ExportTraceServiceRequest`` as protobuf (``application/x-protobuf``)
or JSON (``application/json``), optionally gzip-encoded, as the OpenTelemetry exporters send it.
Spans are converted by :mod:`collectors.otlp`; the answer follows the OTLP/HTTP spec: 200 with an
``ExportTraceServiceResponse`` (``partial_success`` counting and explaining rejected spans), 400 with
a ``google.rpc.Status`` for a body that cannot be decoded, 503 (retryable) when the journal cannot
be written, 413 past the size cap.

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

import gzip
import io
import json
import logging
import os
import threading
import time
from dataclasses import asdict, dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from google.protobuf import json_format
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from collectors.otlp import Converted, Defaults, convert, parse_request
from collectors.requestlog import record_to_row, write_requests
from collectors.spool import list_files

log = logging.getLogger(__name__)

#: largest request body accepted (compressed and decompressed), bytes
MAX_BODY_BYTES = 64 * 1024 * 1024
FILE_PREFIX = "otlp-"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass
class ReceiverStats:
    requests: int = 0
    spans_accepted: int = 0
    spans_duplicate: int = 0
    spans_unknown: int = 0
    spans_rejected: int = 0
    bad_requests: int = 0


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


class OtlpReceiver(ThreadingHTTPServer):
    """The HTTP server; ``journal`` and ``defaults`` are shared by the handler threads."""

    daemon_threads = True

    def __init__(self, addr: tuple[str, int], journal: RequestJournal, defaults: Defaults) -> None:
        super().__init__(addr, _Handler)
        self.journal, self.defaults = journal, defaults
        self.stats = ReceiverStats()
        self.stats_lock = threading.Lock()
        self.rejects = open(journal.state / "rejected.jsonl", "a", encoding="utf-8")

    def record(self, conv: Converted, accepted: int, duplicates: int) -> None:
        with self.stats_lock:
            s = self.stats
            s.requests += 1
            s.spans_accepted += accepted
            s.spans_duplicate += duplicates
            s.spans_unknown += conv.unknown
            s.spans_rejected += len(conv.rejected)
            for span_id, reason in conv.rejected:
                self.rejects.write(json.dumps({"ts": time.time(), "span_id": span_id, "reason": reason}) + "\n")
            self.rejects.flush()


class _Handler(BaseHTTPRequestHandler):
    server: OtlpReceiver
    timeout = 30  # seconds per socket read of a request
    protocol_version = "HTTP/1.1"

    def _reply(self, code: int, message: Any, as_json: bool) -> None:
        body = json_format.MessageToJson(message).encode() if as_json else message.SerializeToString()
        self.send_response(code)
        self.send_header("Content-Type", "application/json" if as_json else "application/x-protobuf")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _error(self, code: int, text: str, as_json: bool) -> None:
        self.close_connection = True  # the body may be unread: this connection cannot carry another request
        with self.server.stats_lock:
            self.server.stats.bad_requests += 1
        log.warning("rejected request: HTTP %d %s", code, text)
        self._reply(code, status_pb2.Status(code=3 if code < 500 else 14, message=text), as_json)

    def _body(self) -> bytes:
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            raise LookupError("Content-Length is required")
        if int(length) > MAX_BODY_BYTES:
            raise OverflowError(f"body over {MAX_BODY_BYTES} bytes")
        body = self.rfile.read(int(length))
        if (self.headers.get("Content-Encoding") or "").lower() == "gzip":
            with gzip.GzipFile(fileobj=io.BytesIO(body)) as gz:
                body = gz.read(MAX_BODY_BYTES + 1)
            if len(body) > MAX_BODY_BYTES:
                raise OverflowError(f"decompressed body over {MAX_BODY_BYTES} bytes")
        return body

    def do_POST(self) -> None:  # noqa: N802 - http.server API
        ctype = self.headers.get("Content-Type") or "application/x-protobuf"
        as_json = ctype.split(";")[0].strip().lower() == "application/json"
        if self.path.split("?")[0] != "/v1/traces":
            return self._error(404, f"no such path {self.path[:80]!r}; traces go to /v1/traces", as_json)
        try:
            message = parse_request(self._body(), ctype)
        except OverflowError as exc:
            return self._error(413, str(exc), as_json)
        except (LookupError, ValueError, OSError, EOFError) as exc:
            return self._error(400, str(exc), as_json)
        conv = convert(message, self.server.defaults)
        try:
            accepted, duplicates = self.server.journal.append(conv.records)
        except OSError as exc:
            return self._error(503, f"journal not writable: {exc}", as_json)
        self.server.record(conv, accepted, duplicates)
        response = ExportTraceServiceResponse()
        if conv.rejected:
            response.partial_success.rejected_spans = len(conv.rejected)
            response.partial_success.error_message = "; ".join(r for _, r in conv.rejected[:5]) + (
                f"; and {len(conv.rejected) - 5} more" if len(conv.rejected) > 5 else "")
        self._reply(200, response, as_json)

    def log_message(self, fmt: str, *args: Any) -> None:
        log.debug(fmt, *args)


def serve(spool: Path | str, defaults: Defaults, addr: str = "127.0.0.1", port: int = 4318,
          state_dir: Path | str | None = None, roll_interval_s: float = 30.0,
          stop: threading.Event | None = None, on_ready=None) -> ReceiverStats:
    """Receive until ``stop`` is set; then roll the journal into the spool and return the counts."""
    journal = RequestJournal(spool, state_dir)
    server = OtlpReceiver((addr, port), journal, defaults)
    stop = stop or threading.Event()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
    thread.start()
    if on_ready is not None:
        on_ready(server.server_address[:2])
    try:
        while not stop.wait(roll_interval_s):
            journal.roll()
    finally:
        server.shutdown()
        server.server_close()
        journal.close()
        server.rejects.close()
    return server.stats


def stats_json(stats: ReceiverStats) -> str:
    return json.dumps(asdict(stats), sort_keys=True)
