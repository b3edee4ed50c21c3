"""SGLang's request spans (``--enable-trace``), made with the real OpenTelemetry SDK in the shape of
``sglang/srt/observability/trace.py`` (root span ``Req <rid>``, per-thread and per-stage child
spans) and ``request_tracing.make_span_attrs`` (usage, request id, model, finish reasons,
latencies), encoded as the OTLP/HTTP exporter sends them and converted to request-log records."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import set_span_in_context

sys.path[:0] = [p for p in (str(Path(__file__).resolve().parents[1]),) if p not in sys.path]

from collectors.otlp import Defaults, convert, parse_request  # noqa: E402
from collectors.requestlog import record_to_row  # noqa: E402

T0_NS = 1_790_000_000_000_000_000


def sglang_spans(monkeypatch, n: int):
    """n requests as SGLang's tokenizer manager traces them; request 3 aborted, request 4 without
    gen_ai.request.id (its rid only)."""
    # SGLang's resource holds only service.name; Resource.create adds OTEL_RESOURCE_ATTRIBUTES
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "host.name=GPU-3.example.internal,tokenwatt.replica_id=sg-r0")
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: "sglang"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("sglang server")
    expected = {}
    for i in range(n):
        rid = f"{i:04d}c0ffee{i:022d}"
        created = T0_NS + i * 400_000_000
        dispatch, ttft, e2e = 0.004, 0.120 + i * 1e-3, 2.0 + i * 1e-2
        root = tracer.start_span(f"Req {rid[:8]}", start_time=created,
                                 attributes={"rid": rid, "module": "sglang::request"})
        thread = tracer.start_span("Tokenizer (host:0a1b2c3d | pid:4242)", start_time=created,
                                   context=set_span_in_context(root),
                                   attributes={"host_id": "0a1b2c3d", "pid": 4242, "thread_label": "Tokenizer"})
        stage = tracer.start_span("tokenize", start_time=created, context=set_span_in_context(thread))
        stage.end(end_time=created + 2_000_000)
        thread.end(end_time=created + int(dispatch * 1e9))
        finish = "abort" if i == 3 else ("length" if i % 2 else "stop")
        attrs = {"gen_ai.usage.completion_tokens": 30 + i, "gen_ai.usage.prompt_tokens": 200 + i,
                 "gen_ai.usage.cached_tokens": 64, "gen_ai.request.max_tokens": 256,
                 "gen_ai.request.top_p": 0.9, "gen_ai.request.temperature": 0.6,
                 "gen_ai.response.model": "qwen-2.5-7b", "gen_ai.response.finish_reasons": json.dumps([finish]),
                 "gen_ai.latency.time_to_first_token": ttft, "gen_ai.latency.e2e": e2e,
                 "gen_ai.latency.time_in_model_decode": e2e - ttft,
                 "gen_ai.latency.time_in_model_inference": e2e - dispatch,
                 "gen_ai.latency.time_in_model_prefill": ttft - dispatch}
        if i != 4:
            attrs["gen_ai.request.id"] = rid
        root.set_attributes(attrs)
        root.end(end_time=created + int(e2e * 1e9))
        expected[rid] = (created, ttft, e2e, 200 + i, 30 + i, "aborted" if i == 3 else "ok")
    return memory.get_finished_spans(), expected


def test_sglang_request_spans_become_records_and_its_stage_spans_are_unknown(monkeypatch):
    spans, expected = sglang_spans(monkeypatch, 6)
    body = encode_spans(spans).SerializeToString()
    out = convert(parse_request(body, "application/x-protobuf"), Defaults(task="code-generate"))
    assert out.rejected == [] and out.unknown == 2 * 6  # a thread span and a stage span per request
    got = {r["request_id"]: r for r in out.records}
    assert set(got) == set(expected)
    for rid, (created, ttft, e2e, prompt, completion, status) in expected.items():
        r = got[rid]
        assert r["arrival_time"] == pytest.approx(created / 1e9, abs=1e-6)
        assert r["first_token_time"] - r["arrival_time"] == pytest.approx(ttft, abs=1e-6)  # TTFT, not prefill
        assert r["finished_time"] - r["arrival_time"] == pytest.approx(e2e, abs=1e-6)
        assert r["scheduled_time"] is None  # SGLang reports no queue time
        assert (r["prompt_tokens"], r["completion_tokens"], r["status"]) == (prompt, completion, status)
        assert (r["node"], r["replica_id"], r["model"], r["task"]) == ("gpu-3", "sg-r0", "qwen-2.5-7b",
                                                                       "code-generate")
        row = record_to_row(r)
        assert row["scheduled_ts"] is None and row["status"] == status


def test_a_bad_cached_token_count_rejects_the_span_with_its_attribute(monkeypatch):
    spans, _ = sglang_spans(monkeypatch, 1)
    message = encode_spans(spans)
    root = next(s for s in message.resource_spans[0].scope_spans[0].spans if s.name.startswith("Req "))
    for kv in root.attributes:
        if kv.key == "gen_ai.usage.cached_tokens":
            kv.value.int_value = -5
    out = convert(message, Defaults())
    assert out.records == [] and len(out.rejected) == 1
    assert "gen_ai.usage.cached_tokens" in out.rejected[0][1] and "Req " in out.rejected[0][1]
