"""`tokenwatt receive otlp`: an OTLP/HTTP trace receiver that spools one REQUESTS row per request span.

``POST /v1/traces`` with an ``ExportTraceServiceRequest`` as protobuf (``application/x-protobuf``)
or JSON (``application/json``), optionally gzip-encoded, as the OpenTelemetry exporters send it.
Spans are converted by :mod:`collectors.otlp`; the answer follows the OTLP/HTTP spec: 200 with an
``ExportTraceServiceResponse`` (``partial_success`` counting and explaining rejected spans), 400 with
a ``google.rpc.Status`` for a body that cannot be decoded, 503 (retryable) when the journal cannot
be written, 413 past the size cap.

Durability (fsync before the 200, rolled segments, dedupe window) is :mod:`collectors.otlp_journal`.
"""
from __future__ import annotations

import json
import threading
import time
from dataclasses import asdict, dataclass
from http.server import ThreadingHTTPServer
from pathlib import Path

from collectors.otlp import Converted, Defaults
from collectors.otlp_disagg import PAIR_WAIT_S
from collectors.otlp_http import OtlpHandler
from collectors.otlp_journal import RequestJournal


@dataclass
class ReceiverStats:
    requests: int = 0
    spans_accepted: int = 0
    spans_duplicate: int = 0
    spans_unknown: int = 0
    spans_rejected: int = 0
    bad_requests: int = 0


class OtlpReceiver(ThreadingHTTPServer):
    """The HTTP server; ``journal`` and ``defaults`` are shared by the handler threads."""

    daemon_threads = True

    def __init__(self, addr: tuple[str, int], journal: RequestJournal, defaults: Defaults) -> None:
        super().__init__(addr, OtlpHandler)
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


def serve(spool: Path | str, defaults: Defaults, addr: str = "127.0.0.1", port: int = 4318,
          state_dir: Path | str | None = None, roll_interval_s: float = 30.0,
          stop: threading.Event | None = None, on_ready=None, pair_wait_s: float = PAIR_WAIT_S) -> ReceiverStats:
    """Receive until ``stop`` is set; then roll the journal into the spool and return the counts."""
    journal = RequestJournal(spool, state_dir, pair_wait_s=pair_wait_s)
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
