"""Disaggregated SGLang (prefill-decode): the prefill server's ``prefill Req <rid>`` span and the decode
server's ``decode Req <rid>`` span of one request become one request row, through the live receiver
(real OpenTelemetry SDK exporters over HTTP, the halves sent apart and across a SIGKILL) and the
offline file-exporter conversion. Span shapes follow ``sglang/srt/observability/trace.py``
(``TraceReqContext.trace_req_start``: name ``f"{role} Req {rid[:8]}"``, attributes ``rid``,
``module``, ``bootstrap_room`` as hex text) and ``request_tracing.make_span_attrs``."""
from __future__ import annotations

import json
import signal
import sys
from datetime import datetime
from pathlib import Path

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [p for p in (str(ROOT), str(ROOT / "tests")) if p not in sys.path]

from collectors.otlp import Defaults, convert, parse_request  # noqa: E402
from collectors.otlp_cli import convert_file  # noqa: E402
from collectors.otlp_disagg import PHASE_KEY, RECEIVED_KEY, pair  # noqa: E402
from test_collectors_otlp import otlp_json, spooled, start_receiver  # noqa: E402

T0_NS = 1_790_000_000_000_000_000
N = 6


def _phase_spans(role: str, host: str, replica: str):
    """N requests as the ``role`` server traces them; request 2 fails on the decode server."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create(
        {SERVICE_NAME: f"sglang-{role}", "host.name": host, "tokenwatt.replica_id": replica}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("sglang server")
    for i in range(N):
        rid = f"{i:04d}d15a99{i:022d}"
        created = T0_NS + i * 500_000_000 + (3_000_000 if role == "decode" else 0)  # the router sends both
        span = tracer.start_span(f"{role} Req {rid[:8]}", start_time=created, attributes={
            "rid": rid, "module": "sglang::request", "bootstrap_room": hex(0x5EED00 + i)})
        if role == "prefill":  # the prefill server computes the prompt and the first token only
            ttft, e2e, out = 0.080 + i * 1e-3, 0.081 + i * 1e-3, 1
        else:  # the decode server waits for the KV cache, then generates every output token
            ttft, e2e, out = 0.150 + i * 1e-3, 3.0 + i * 0.1, 40 + i
        span.set_attributes({
            "gen_ai.request.id": rid, "gen_ai.response.model": "qwen-2.5-7b",
            "gen_ai.usage.prompt_tokens": 500 + i, "gen_ai.usage.completion_tokens": out,
            "gen_ai.usage.cached_tokens": 0, "gen_ai.response.finish_reasons": json.dumps(["stop"]),
            "gen_ai.latency.time_to_first_token": ttft, "gen_ai.latency.e2e": e2e})
        if role == "decode" and i == 2:
            span.set_status(Status(StatusCode.ERROR, "decode failed"))
        span.end(end_time=created + int(e2e * 1e9))
    return memory.get_finished_spans()


def _expected(i: int) -> dict:
    arrival = (T0_NS + i * 500_000_000) / 1e9
    return {"arrival": arrival, "ttft": 0.080 + i * 1e-3, "finish": arrival + 0.003 + 3.0 + i * 0.1,
            "prompt": 500 + i, "completion": 40 + i, "status": "error" if i == 2 else "ok"}


def _check_rows(rows: list[dict]) -> None:
    assert len(rows) == N and len({r["request_id"] for r in rows}) == N
    ts = lambda r, k: r[k].timestamp() if isinstance(r[k], datetime) else r[k]  # noqa: E731
    for r in sorted(rows, key=lambda r: r["request_id"]):
        exp = _expected(int(r["request_id"][:4]))
        arrival = ts(r, "arrival_ts")
        assert arrival == pytest.approx(exp["arrival"], abs=2e-6)  # the prefill server's arrival
        assert ts(r, "first_token_ts") - arrival == pytest.approx(exp["ttft"], abs=2e-6)  # prefill's TTFT
        assert ts(r, "finish_ts") == pytest.approx(exp["finish"], abs=2e-6)  # the decode server's finish
        assert (r["prompt_tokens"], r["completion_tokens"], r["status"]) == (
            exp["prompt"], exp["completion"], exp["status"])
        assert (r["node"], r["replica_id"], r["model"]) == ("gpu-4", "sg-d0", "qwen-2.5-7b")  # decode's


def test_prefill_and_decode_spans_merge_into_one_request_in_the_live_receiver(tmp_path):
    spool = tmp_path / "spool"
    prefill = _phase_spans("prefill", "gpu-3.example.internal", "sg-p0")
    decode = _phase_spans("decode", "GPU-4", "sg-d0")
    proc, url = start_receiver(spool)
    try:
        exporter = OTLPSpanExporter(endpoint=url, timeout=5)
        assert exporter.export(decode[:3]).name == "SUCCESS"  # decode halves first for some requests
        assert exporter.export(prefill).name == "SUCCESS"
    finally:
        proc.send_signal(signal.SIGKILL)  # acknowledged, so journaled: three prefill halves still wait
        proc.wait(timeout=30)
    proc, url = start_receiver(spool)
    try:
        exporter = OTLPSpanExporter(endpoint=url, timeout=5)
        assert exporter.export(decode[3:]).name == "SUCCESS"
        assert exporter.export(prefill[:2]).name == "SUCCESS"  # a retried export: duplicates, not rows
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    rows = spooled(spool)
    _check_rows(rows)


def test_the_offline_conversion_merges_the_halves_of_a_file(tmp_path):
    prefill = _phase_spans("prefill", "gpu-3", "sg-p0")
    decode = _phase_spans("decode", "gpu-4", "sg-d0")
    path = tmp_path / "traces.jsonl"
    lines = [otlp_json(encode_spans(decode[:4])), otlp_json(encode_spans(prefill)), otlp_json(encode_spans(decode[4:]))]
    path.write_bytes(b"\n".join(lines) + b"\n")
    out = convert_file(path, tmp_path / "spool", Defaults())
    assert out["requests"] == N and out["rejected"] == [] and out["duplicates"] == 0
    _check_rows(spooled(tmp_path / "spool"))
    assert convert_file(path, tmp_path / "spool", Defaults())["files"] == out["files"]  # a rerun rewrites them
    assert len(spooled(tmp_path / "spool")) == N


def test_a_half_waits_for_its_other_half_then_is_kept_alone():
    decode = _phase_spans("decode", "gpu-4", "sg-d0")
    conv = convert(parse_request(encode_spans(decode[:1]).SerializeToString(), "application/x-protobuf"), Defaults())
    (half,) = conv.records
    assert half[PHASE_KEY] == "decode"
    half[RECEIVED_KEY] = 1000.0
    assert pair([half], now_s=1000.0 + 599, wait_s=600) == ([], [half])
    (alone,), waiting = pair([half], now_s=1000.0 + 601, wait_s=600)
    assert waiting == [] and PHASE_KEY not in alone and alone["completion_tokens"] == 40
    # an unpartitioned server's span ("Req <rid>") is a whole request, never a half
    unified = {k: v for k, v in half.items() if k not in (PHASE_KEY, RECEIVED_KEY)}
    assert pair([unified], now_s=0.0) == ([unified], [])
