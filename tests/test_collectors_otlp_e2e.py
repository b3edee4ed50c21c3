"""Issue 13, first "done when": a stock-vLLM-like stack into the warehouse.

dcgm-exporter text (host label ``GPU-7.example.internal``) scraped by the real agent, vLLM request
spans sent by the real OpenTelemetry SDK exporter (``host.name=gpu-7``) to `tokenwatt receive otlp`,
the replica declared with `tokenwatt replicas`, then `tokenwatt run`: every request is in
``marts.fct_request_energy`` once, with its tokens and times, on the devices' node.
"""
from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import duckdb
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [p for p in (str(ROOT), str(ROOT / "tests")) if p not in sys.path]

from collectors.agent import Agent  # noqa: E402
from collectors.prometheus import PrometheusBackend  # noqa: E402
from test_collectors_otlp import start_receiver  # noqa: E402

T_START = time.time()


def dcgm_now() -> str:
    dt_s = time.time() - T_START
    lines = []
    for gpu in range(4):
        labels = (f'gpu="{gpu}",UUID="GPU-{gpu:04d}",modelName="NVIDIA H100 80GB HBM3",'
                  f'Hostname="GPU-7.example.internal"')
        lines += [f"DCGM_FI_DEV_POWER_USAGE{{{labels}}} 450",
                  f"DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION{{{labels}}} {1e9 + 450_000 * dt_s:.0f}",
                  f"DCGM_FI_DEV_GPU_UTIL{{{labels}}} 80"]
    return "\n".join(lines) + "\n"


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        body = dcgm_now().encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


def request_spans(n: int, t0_ns: int):
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"host.name": "gpu-7", "service.name": "vllm",
                                                        "tokenwatt.replica_id": "llama70b-r0"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("vllm")
    for i in range(n):
        arrival = t0_ns + i * 300_000_000
        span = tracer.start_span("llm_request", start_time=arrival)
        span.set_attributes({"gen_ai.request.id": f"e2e-{i}", "gen_ai.response.model": "llama-3.1-70b",
                             "gen_ai.usage.prompt_tokens": 200 + i, "gen_ai.usage.completion_tokens": 50 + i,
                             "gen_ai.latency.time_in_queue": 0.01, "gen_ai.latency.time_to_first_token": 0.2,
                             "gen_ai.latency.e2e": 1.0})
        span.end(end_time=arrival + 1_000_000_000)
    return memory.get_finished_spans()


@pytest.mark.slow
def test_stock_vllm_spans_and_dcgm_exporter_reach_the_warehouse_on_one_node(tmp_path):
    home = tmp_path / "home"
    spool = home / "spool"
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    receiver, url = start_receiver(spool)
    try:
        backend = PrometheusBackend([f"http://127.0.0.1:{srv.server_address[1]}/metrics"], node="scraper")
        agent = Agent(backend, spool, node="scraper", interval_s=0.5, flush_interval_s=2.0)
        runner = threading.Thread(target=agent.run, kwargs={"duration_s": 16.0, "handle_signals": False})
        runner.start()
        time.sleep(2.0)
        spans = request_spans(30, time.time_ns())
        time.sleep(11.0)  # the spans' requests are over (30 x 0.3 s + 1 s)
        assert OTLPSpanExporter(endpoint=url, timeout=5).export(spans) == SpanExportResult.SUCCESS
        runner.join()
        agent.close()
    finally:
        receiver.send_signal(signal.SIGTERM)
        assert receiver.wait(timeout=30) == 0
        srv.shutdown()
    today = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d")
    (tmp_path / "replicas.yaml").write_text(
        "replicas:\n  - replica_id: llama70b-r0\n    node: gpu-7.example.internal\n    model: llama-3.1-70b\n"
        f"    chip: nvidia-h100-sxm\n    devices: [0, 1, 2, 3]\n    valid_from: {today}T00:00:00Z\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cli = [sys.executable, "-m", "pipelines.cli"]
    r = subprocess.run(cli + ["replicas", "--file", str(tmp_path / "replicas.yaml"), "--spool", str(spool)],
                       cwd=ROOT, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    r = subprocess.run(cli + ["run", "--home", str(home)], cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=1200)
    assert "tokenwatt run: ok" in r.stderr, r.stderr[-4000:]
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    rows = con.execute("""select request_id, node, replica_id, prompt_tokens, completion_tokens, ttft_s, latency_s,
                                 energy_j from marts.fct_request_energy order by request_id""").fetchall()
    by_id = {r[0]: r for r in rows}
    assert len(rows) == len(by_id) == 30
    for i in range(30):
        _, node, replica, prompt, completion, ttft, latency, energy = by_id[f"e2e-{i}"]
        assert (node, replica, prompt, completion) == ("gpu-7", "llama70b-r0", 200 + i, 50 + i)
        assert ttft == pytest.approx(0.2, abs=1e-5) and latency == pytest.approx(1.0, abs=1e-5)
        assert energy > 0
