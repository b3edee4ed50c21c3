"""OpenTelemetry traces -> request-log records: the spans vLLM and SGLang emit, one per request.

vLLM (``--otlp-traces-endpoint``) ends one ``llm_request`` span per finished request, started at
the request's arrival, with the attributes of ``vllm/tracing.py``'s ``SpanAttributes``:

======================================  ==========================================
attribute                               request-log field
======================================  ==========================================
``gen_ai.request.id``                   request_id (else ``gen_ai.response.id``)
``gen_ai.response.model``               model (else ``gen_ai.request.model``)
``gen_ai.usage.prompt_tokens``          prompt_tokens (else ``gen_ai.usage.input_tokens``)
``gen_ai.usage.completion_tokens``      completion_tokens (else ``gen_ai.usage.output_tokens``)
span start                              arrival_time (else span end - ``gen_ai.latency.e2e``)
``gen_ai.latency.time_in_queue``        scheduled_time = arrival + queue
``gen_ai.latency.time_to_first_token``  first_token_time = arrival + TTFT (else scheduled +
                                        ``gen_ai.latency.time_in_model_prefill``)
span end                                finished_time (else arrival + ``gen_ai.latency.e2e``)
span status ERROR                       status ``error``
``gen_ai.response.finish_reasons``      status ``aborted`` when it holds ``abort``
                                        (a list, or SGLang's JSON text ``'["abort"]'``)
======================================  ==========================================

SGLang (``--enable-trace --otlp-traces-endpoint``, with ``OTEL_EXPORTER_OTLP_TRACES_PROTOCOL=
http/protobuf`` for this receiver) ends one root span per request, named ``Req <rid>`` (``prefill
Req`` / ``decode Req`` when disaggregated), started at the request's arrival and ended at its
finish, with the names of ``sglang/srt/observability/trace.py``'s ``SpanAttributes`` set by the
tokenizer manager (``request_tracing.make_span_attrs``): ``gen_ai.usage.prompt_tokens``,
``gen_ai.usage.completion_tokens``, ``gen_ai.usage.cached_tokens`` (part of the prompt; not
stored), ``gen_ai.request.id`` (else the span's own ``rid``), ``gen_ai.response.model``,
``gen_ai.response.finish_reasons`` and the latencies ``gen_ai.latency.time_to_first_token``,
``e2e``, ``time_in_model_prefill`` (from dispatch to first token, so not used when TTFT is
there), ``time_in_model_decode`` and ``time_in_model_inference``. It sets no queue time, so the
scheduled time stays empty (the warehouse then uses the arrival). Its per-thread and per-stage
child spans (``tokenize``, ``prefill_forward``, ...) carry none of the request attributes and are
counted as unknown. Its resource holds only ``service.name``: give the node with
``OTEL_RESOURCE_ATTRIBUTES=host.name=...`` on the server (or the receiver's default node). A
disaggregated request is reported by the prefill and the decode server under one request id
(root spans ``prefill Req ...`` and ``decode Req ...``): each becomes a half record (private key
``_phase``) and the two are merged into one request by :mod:`collectors.otlp_disagg`.

The node is the resource's ``host.name`` (normalised by :func:`collectors.names.host_name`);
``tokenwatt.replica_id`` (else the resource's ``service.instance.id``), ``tokenwatt.task``,
``tokenwatt.language`` and ``tokenwatt.tier`` are read from the span, else the resource (a stock
server sets them with ``OTEL_RESOURCE_ATTRIBUTES``), else :class:`Defaults`.

A span with none of the request attributes (an HTTP or scheduler span) is *unknown*: counted and
skipped. A request span that cannot become a row is *rejected* with a reason naming the span and
the attribute; the record itself is checked by :func:`collectors.requestlog.record_to_row`, the
one validation of request telemetry.
"""
from __future__ import annotations

import base64
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping

from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1 import trace_pb2

from collectors.names import host_name, name_problem
from collectors.otlp_disagg import PHASE_KEY, span_phase
from collectors.requestlog import record_to_row

#: span attributes that mark a span as one inference request
REQUEST_KEYS = ("gen_ai.request.id", "gen_ai.usage.prompt_tokens", "gen_ai.usage.completion_tokens",
                "gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens")
#: longest latency accepted, in seconds (a day)
MAX_LATENCY_S = 86400.0
_ID_FIELDS = ("traceId", "spanId", "parentSpanId")


class SpanError(ValueError):
    """A request span that cannot become a REQUESTS row."""


@dataclass(frozen=True)
class Defaults:
    """Values for spans (and resources) that do not carry them."""

    node: str | None = None
    replica_id: str | None = None
    task: str | None = "chat"
    language: str | None = "en"
    tier: str | None = "api"
    aliases: Mapping[str, str] = field(default_factory=dict)


@dataclass
class Converted:
    """What one export request held."""

    records: list[dict[str, Any]] = field(default_factory=list)
    unknown: int = 0
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (span id hex, reason)


def parse_request(body: bytes, content_type: str) -> ExportTraceServiceRequest:
    """An ``ExportTraceServiceRequest`` from an OTLP/HTTP body (protobuf or JSON). ValueError if not."""
    message = ExportTraceServiceRequest()
    if content_type.split(";")[0].strip().lower() == "application/json":
        try:
            data = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"not valid JSON: {exc}") from None
        return parse_json_object(data)
    try:
        message.ParseFromString(body)
    except Exception as exc:  # noqa: BLE001 - protobuf raises DecodeError and others
        raise ValueError(f"not a valid ExportTraceServiceRequest protobuf: {exc}") from None
    return message


def _hex_ids_to_base64(node: Any) -> Any:
    """OTLP/JSON writes trace and span ids as hex; protobuf's JSON mapping reads bytes as base64."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key in _ID_FIELDS and isinstance(value, str):
                try:
                    value = base64.b64encode(bytes.fromhex(value)).decode()
                except ValueError:
                    raise ValueError(f"{key} is not hex: {value[:40]!r}") from None
            out[key] = _hex_ids_to_base64(value)
        return out
    if isinstance(node, list):
        return [_hex_ids_to_base64(v) for v in node]
    return node


def parse_json_object(data: Any) -> ExportTraceServiceRequest:
    """An ``ExportTraceServiceRequest`` from OTLP/JSON already decoded (a collector file line too)."""
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object, got {type(data).__name__}")
    message = ExportTraceServiceRequest()
    try:
        json_format.ParseDict(_hex_ids_to_base64(data), message, ignore_unknown_fields=True)
    except json_format.ParseError as exc:
        raise ValueError(f"not OTLP/JSON traces: {exc}") from None
    return message


def _value(v: Any) -> Any:
    kind = v.WhichOneof("value")
    if kind in ("string_value", "bool_value", "int_value", "double_value"):
        return getattr(v, kind)
    if kind == "array_value":
        return [_value(x) for x in v.array_value.values]
    return None


def attributes(kvs: Any) -> dict[str, Any]:
    """OTLP ``KeyValue`` list -> dict (scalars and arrays; other kinds None)."""
    return {kv.key: _value(kv.value) for kv in kvs}


def _latency(attrs: Mapping[str, Any], key: str) -> float | None:
    value = attrs.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SpanError(f"{key}: expected seconds as a number, got {value!r}")
    if not math.isfinite(value) or value < 0 or value > MAX_LATENCY_S:
        raise SpanError(f"{key}: expected 0 to {MAX_LATENCY_S:g} s, got {value!r}")
    return float(value)


def _first(attrs: Mapping[str, Any], *keys: str) -> Any:
    return next((attrs[k] for k in keys if attrs.get(k) not in (None, "")), None)


def _tokens(attrs: Mapping[str, Any], *keys: str) -> Any:
    key = next((k for k in keys if attrs.get(k) is not None), None)
    if key is None:
        raise SpanError(f"{keys[0]} is required")
    value = attrs[key]
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**53:
        raise SpanError(f"{key}: expected a token count (a non-negative integer), got {value!r}")
    return value


def span_record(span: trace_pb2.Span, resource: Mapping[str, Any], defaults: Defaults) -> dict[str, Any]:
    """A request-log record for one request span. Raises :class:`SpanError`."""
    attrs = attributes(span.attributes)
    both = {**resource, **attrs}
    host = _first(resource, "host.name") or _first(attrs, "host.name") or defaults.node
    if host is None:
        raise SpanError("no host.name resource attribute and no default node")
    if not isinstance(host, str):
        raise SpanError(f"host.name: expected a string, got {host!r}")
    e2e = _latency(attrs, "gen_ai.latency.e2e")
    queue = _latency(attrs, "gen_ai.latency.time_in_queue")
    ttft = _latency(attrs, "gen_ai.latency.time_to_first_token")
    prefill = _latency(attrs, "gen_ai.latency.time_in_model_prefill")
    for key in ("gen_ai.latency.time_in_model_decode", "gen_ai.latency.time_in_model_inference"):
        _latency(attrs, key)  # validated, not stored
    if "gen_ai.usage.cached_tokens" in attrs:
        _tokens(attrs, "gen_ai.usage.cached_tokens")  # SGLang: validated, not stored
    start = span.start_time_unix_nano / 1e9 if span.start_time_unix_nano else None
    end = span.end_time_unix_nano / 1e9 if span.end_time_unix_nano else None
    if start is None and end is not None and e2e is not None:
        start = end - e2e
    if end is None and start is not None and e2e is not None:
        end = start + e2e
    if start is None or end is None:
        raise SpanError("span start and end times are required (or one of them and gen_ai.latency.e2e)")
    scheduled = start + queue if queue is not None else None
    first_token = start + ttft if ttft is not None else (
        scheduled + prefill if scheduled is not None and prefill is not None else None)
    phase = span_phase(span.name)
    return ({PHASE_KEY: phase} if phase else {}) | {  # a disaggregated request's half: collectors.otlp_disagg
        "request_id": _first(attrs, "gen_ai.request.id", "gen_ai.response.id", "rid"),
        "model": _first(attrs, "gen_ai.response.model", "gen_ai.request.model"),
        "node": host_name(host, defaults.aliases),
        "replica_id": _first(both, "tokenwatt.replica_id") or _first(resource, "service.instance.id")
        or defaults.replica_id,
        "task": _first(both, "tokenwatt.task") or defaults.task,
        "language": _first(both, "tokenwatt.language") or defaults.language,
        "tier": _first(both, "tokenwatt.tier") or defaults.tier,
        "arrival_time": start,
        "scheduled_time": scheduled,
        "first_token_time": first_token,
        "finished_time": end,
        "prompt_tokens": _tokens(attrs, "gen_ai.usage.prompt_tokens", "gen_ai.usage.input_tokens"),
        "completion_tokens": _tokens(attrs, "gen_ai.usage.completion_tokens", "gen_ai.usage.output_tokens"),
        "status": _status(span, attrs),
    }


def _status(span: trace_pb2.Span, attrs: Mapping[str, Any]) -> str:
    """``error`` for an ERROR span status, ``aborted`` when a finish reason is ``abort``, else ``ok``."""
    if span.status.code == trace_pb2.Status.STATUS_CODE_ERROR:
        return "error"
    reasons = attrs.get("gen_ai.response.finish_reasons")
    if isinstance(reasons, str):  # SGLang writes the list as JSON text
        try:
            reasons = json.loads(reasons)
        except json.JSONDecodeError:
            reasons = [reasons]
    if isinstance(reasons, list) and "abort" in reasons:
        return "aborted"
    return "ok"


def convert(message: ExportTraceServiceRequest, defaults: Defaults) -> Converted:
    """Request-log records (checked by ``record_to_row``) from one export request."""
    out = Converted()
    for resource_spans in message.resource_spans:
        resource = attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                attrs_keys = {kv.key for kv in span.attributes}
                if not attrs_keys.intersection(REQUEST_KEYS):
                    out.unknown += 1
                    continue
                try:
                    record = span_record(span, resource, defaults)
                    for key in ("request_id", "node", "replica_id", "model", "task", "language", "tier"):
                        if record[key] is not None and name_problem(record[key]):
                            raise SpanError(f"{key} {str(record[key])[:60]!r}: {name_problem(record[key])}")
                    record_to_row(record)
                except (ValueError, OverflowError, OSError) as exc:  # SpanError, RequestLogError, bad times
                    out.rejected.append((span.span_id.hex(), f"span {span.span_id.hex() or '?'} "
                                         f"({span.name or 'unnamed'}): {exc}"))
                    continue
                out.records.append(record)
    return out


def iter_file_export(path: Path | str) -> Iterator[tuple[int, ExportTraceServiceRequest | None, str | None]]:
    """(line number, message or None, error or None) for each line of a Collector ``file`` exporter's
    JSON-lines output (one OTLP/JSON ``{"resourceSpans": [...]}`` object a line)."""
    with open(path, encoding="utf-8", errors="surrogateescape") as fh:
        for line_no, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                yield line_no, parse_json_object(json.loads(line)), None
            except (json.JSONDecodeError, ValueError) as exc:
                yield line_no, None, str(exc)
