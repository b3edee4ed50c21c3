"""`tokenwatt receive otlp` as a subprocess, fed by the real OpenTelemetry SDK and its OTLP/HTTP
exporter with vLLM's span attributes; SIGKILLed half way, restarted, and the spool checked."""
from __future__ import annotations

import base64
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from google.protobuf import json_format
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [p for p in (str(ROOT),) if p not in sys.path]

from collectors.otlp import Defaults, convert, parse_json_object  # noqa: E402
from collectors.otlp_cli import convert_file  # noqa: E402
from collectors.spool import list_files  # noqa: E402

T0_NS = 1_790_000_000_000_000_000  # 2026-09-21 UTC
RESOURCE = {"host.name": "GPU-7.example.internal", "service.name": "vllm", "tokenwatt.replica_id": "llama-r0",
            "tokenwatt.tier": "subscription"}


def vllm_spans(first: int, count: int, resource=RESOURCE):
    """Finished SDK spans as vLLM's output processor makes them (start at arrival, end at finish)."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create(resource))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("vllm.v1.engine.output_processor")
    expected = {}
    for i in range(first, first + count):
        arrival = T0_NS + i * 250_000_000
        queue, ttft, e2e = 0.002 + i * 1e-5, 0.150 + i * 1e-4, 1.5 + i * 1e-3
        span = tracer.start_span("llm_request", kind=SpanKind.SERVER, start_time=arrival)
        span.set_attributes({
            "gen_ai.response.model": "llama-3.1-70b", "gen_ai.request.id": f"cmpl-{i:05d}",
            "gen_ai.request.temperature": 0.7, "gen_ai.request.top_p": 1.0, "gen_ai.request.max_tokens": 512,
            "gen_ai.request.n": 1, "gen_ai.usage.num_sequences": 1,
            "gen_ai.usage.prompt_tokens": 100 + i, "gen_ai.usage.completion_tokens": 20 + i % 50,
            "gen_ai.latency.time_in_queue": queue, "gen_ai.latency.time_to_first_token": ttft,
            "gen_ai.latency.e2e": e2e, "gen_ai.latency.time_in_model_prefill": ttft - queue,
            "gen_ai.latency.time_in_model_decode": e2e - ttft, "gen_ai.latency.time_in_model_inference": e2e - queue,
        })
        if i % 17 == 0:
            span.set_status(Status(StatusCode.ERROR, "engine error"))
        span.end(end_time=arrival + int(e2e * 1e9))
        expected[f"cmpl-{i:05d}"] = (arrival, queue, ttft, e2e, 100 + i, 20 + i % 50, i % 17 == 0)
    return memory.get_finished_spans(), expected


def start_receiver(spool: Path, *extra: str) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipelines.cli", "receive", "otlp", "--spool", str(spool), "--port", "0",
         "--roll-interval-s", "60", *extra],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        m = re.search(r"listening on (http://\S+/v1/traces)", line)
        if m:
            threading.Thread(target=proc.stderr.read, daemon=True).start()  # keep the pipe drained
            return proc, m.group(1)
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise AssertionError("receiver did not start")


def spooled(spool: Path) -> list[dict]:
    rows = []
    for f in list_files(spool, "requests"):
        rows += pq.read_table(f).to_pylist()
    return rows


def check_row(row, exp):
    arrival, queue, ttft, e2e, prompt, completion, error = exp
    us = lambda ns: datetime.fromtimestamp(ns // 1000 / 1e6, tz=timezone.utc)  # noqa: E731
    assert abs((row["arrival_ts"] - us(arrival)).total_seconds()) < 2e-6
    assert abs((row["scheduled_ts"] - row["arrival_ts"]).total_seconds() - queue) < 2e-6
    assert abs((row["first_token_ts"] - row["arrival_ts"]).total_seconds() - ttft) < 2e-6
    assert abs((row["finish_ts"] - row["arrival_ts"]).total_seconds() - e2e) < 2e-6
    assert (row["prompt_tokens"], row["completion_tokens"]) == (prompt, completion)
    assert row["status"] == ("error" if error else "ok")
    assert (row["node"], row["replica_id"], row["model"], row["tier"], row["task"]) == (
        "gpu-7", "llama-r0", "llama-3.1-70b", "subscription", "chat")


def test_sigkill_loses_no_acknowledged_span_and_a_restart_spools_each_once(tmp_path):
    spool = tmp_path / "spool"
    spans, expected = vllm_spans(0, 400)
    batches = [spans[i:i + 10] for i in range(0, len(spans), 10)]
    proc, url = start_receiver(spool)
    acked, lock, todo = set(), threading.Lock(), list(range(len(batches)))

    def sender():
        exporter = OTLPSpanExporter(endpoint=url, timeout=2)
        while True:
            with lock:
                if not todo:
                    return
                b = todo.pop(0)
            if exporter.export(batches[b]) == SpanExportResult.SUCCESS:
                with lock:
                    acked.add(b)

    threads = [threading.Thread(target=sender) for _ in range(4)]
    for t in threads:
        t.start()
    while len(acked) < 8:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)  # mid-stream: exports are in flight
    proc.wait()
    for t in threads:
        t.join()
    acked_ids = {s.attributes["gen_ai.request.id"] for b in acked for s in batches[b]}
    assert 8 <= len(acked) < len(batches)
    assert not spooled(spool)  # nothing rolled yet: the acknowledged spans live only in the journal

    proc, url = start_receiver(spool)  # recovers the journal, then the exporter retries what failed
    exporter = OTLPSpanExporter(endpoint=url, timeout=5)
    for b in range(len(batches)):
        if b not in acked:
            assert exporter.export(batches[b]) == SpanExportResult.SUCCESS
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    rows = spooled(spool)
    ids = [r["request_id"] for r in rows]
    assert len(ids) == len(set(ids)) == len(expected)  # every request once, retried batches too
    assert acked_ids <= set(ids)
    for row in rows:
        check_row(row, expected[row["request_id"]])


def otlp_json(message) -> bytes:
    """OTLP/JSON as the spec writes it: protobuf's JSON mapping with trace and span ids in hex."""
    def hexed(node):
        if isinstance(node, dict):
            return {k: (base64.b64decode(v).hex() if k in ("traceId", "spanId", "parentSpanId") else hexed(v))
                    for k, v in node.items()}
        return [hexed(v) for v in node] if isinstance(node, list) else node
    return json.dumps(hexed(json_format.MessageToDict(message))).encode()


def post(url, body: bytes, ctype: str):
    req = urllib.request.Request(url, data=body, headers={"Content-Type": ctype}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_malformed_spans_are_rejected_with_a_reason_unknown_skipped_the_rest_kept(tmp_path):
    spool = tmp_path / "spool"
    spans, expected = vllm_spans(0, 3)
    bad = [
        {"gen_ai.request.id": "bad-tokens", "gen_ai.response.model": "m", "gen_ai.usage.prompt_tokens": "lots",
         "gen_ai.usage.completion_tokens": 1},
        {"gen_ai.request.id": "bad-ttft", "gen_ai.response.model": "m", "gen_ai.usage.prompt_tokens": 1,
         "gen_ai.usage.completion_tokens": 1, "gen_ai.latency.time_to_first_token": -3.0},
        {"gen_ai.request.id": "no-tokens", "gen_ai.response.model": "m"},
    ]
    message = ExportTraceServiceRequest()
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    message.CopyFrom(encode_spans(spans))
    scope = message.resource_spans[0].scope_spans[0]
    for attrs in bad:
        s = scope.spans.add(name="llm_request", start_time_unix_nano=T0_NS, end_time_unix_nano=T0_NS + 10**9,
                            span_id=os.urandom(8), trace_id=os.urandom(16))
        for k, v in attrs.items():
            kv = s.attributes.add(key=k)
            kv.value.string_value = v if isinstance(v, str) else ""
            if not isinstance(v, str):
                if isinstance(v, float):
                    kv.value.double_value = v
                else:
                    kv.value.int_value = v
    scope.spans.add(name="POST /v1/chat/completions", start_time_unix_nano=T0_NS, end_time_unix_nano=T0_NS + 1)
    proc, url = start_receiver(spool)
    try:
        code, body = post(url, message.SerializeToString(), "application/x-protobuf")
        assert code == 200
        response = ExportTraceServiceResponse.FromString(body)
        assert response.partial_success.rejected_spans == 3
        reason = response.partial_success.error_message
        assert "gen_ai.usage.prompt_tokens" in reason and "gen_ai.latency.time_to_first_token" in reason, reason
        # the same export as OTLP/JSON (hex ids): same answer, nothing spooled twice
        code, body = post(url, otlp_json(message), "application/json")
        assert code == 200 and int(json.loads(body)["partialSuccess"]["rejectedSpans"]) == 3
        code, body = post(url, b"\x0a\xff\xff garbage", "application/x-protobuf")
        assert code == 400
        code, _ = post(url, b"{not json", "application/json")
        assert code == 400
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    rows = spooled(spool)
    assert sorted(r["request_id"] for r in rows) == sorted(expected)
    rejected = (spool / ".otlp-receiver" / "rejected.jsonl").read_text().splitlines()
    assert len(rejected) == 6 and all("reason" in json.loads(line) for line in rejected)


def test_collector_file_exporter_output_converts_offline(tmp_path):
    spans, expected = vllm_spans(0, 30, resource={"host.name": "ip-10-0-0-7.ec2.internal", "service.name": "vllm",
                                                  "service.instance.id": "r7"})
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    lines = [otlp_json(encode_spans(spans[i:i + 10])).decode() for i in range(0, 30, 10)]
    lines.insert(1, "{broken")
    lines.append(lines[0])  # the collector wrote a retried batch twice
    path = tmp_path / "traces.jsonl"
    path.write_text("\n".join(lines) + "\n")
    result = convert_file(path, tmp_path / "spool", Defaults(aliases={"ip-10-0-0-7": "gpu-7"}))
    assert (result["requests"], result["duplicates"], len(result["bad_lines"])) == (30, 10, 1)
    assert result["bad_lines"][0].startswith(f"{path}:2:")
    again = convert_file(path, tmp_path / "spool", Defaults(aliases={"ip-10-0-0-7": "gpu-7"}))
    assert again["files"] == result["files"]  # a rerun rewrites the same files
    rows = spooled(tmp_path / "spool")
    assert len(rows) == 30 and {(r["node"], r["replica_id"]) for r in rows} == {("gpu-7", "r7")}


def test_json_ids_are_hex_per_the_otlp_spec():
    spans, _ = vllm_spans(5, 1)
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    text = json_format.MessageToDict(encode_spans(spans))
    span = text["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    span["spanId"] = spans[0].context.span_id.to_bytes(8, "big").hex()
    span["traceId"] = spans[0].context.trace_id.to_bytes(16, "big").hex()
    message = parse_json_object(text)
    assert message.resource_spans[0].scope_spans[0].spans[0].span_id.hex() == span["spanId"]
    assert len(convert(message, Defaults()).records) == 1
    with pytest.raises(ValueError, match="spanId is not hex"):
        parse_json_object({"resourceSpans": [{"scopeSpans": [{"spans": [{"spanId": "zz"}]}]}]})


def test_names_that_break_the_identifier_policy_are_rejected_not_spooled():
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    spans, _ = vllm_spans(0, 2, resource={**RESOURCE, "host.name": "gpu-7\nevil"})
    conv = convert(encode_spans(spans), Defaults())
    assert not conv.records and len(conv.rejected) == 2 and "node" in conv.rejected[0][1]
    spans, _ = vllm_spans(0, 1, resource={**RESOURCE, "tokenwatt.replica_id": "r" * 500})
    conv = convert(encode_spans(spans), Defaults())
    assert not conv.records and "replica_id" in conv.rejected[0][1] and "longer than" in conv.rejected[0][1]
