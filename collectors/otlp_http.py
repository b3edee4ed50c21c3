"""The OTLP/HTTP request handler of `tokenwatt receive otlp` (:mod:`collectors.otlp_receiver`).

200 with an ``ExportTraceServiceResponse`` (``partial_success`` counting and explaining rejected
spans), 400 with a ``google.rpc.Status`` for a body that cannot be decoded, 503 (retryable) when the
journal cannot be written, 413 past the size cap, 404 off ``/v1/traces``.
"""
from __future__ import annotations

import gzip
import io
import logging
from http.server import BaseHTTPRequestHandler
from typing import Any

from google.protobuf import json_format
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from collectors.otlp import convert, parse_request

log = logging.getLogger(__name__)

#: largest request body accepted (compressed and decompressed), bytes
MAX_BODY_BYTES = 64 * 1024 * 1024


class OtlpHandler(BaseHTTPRequestHandler):
    """One OTLP/HTTP export request: decode, convert, journal, answer."""

    server: Any  # collectors.otlp_receiver.OtlpReceiver: journal, defaults, stats, record()
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
