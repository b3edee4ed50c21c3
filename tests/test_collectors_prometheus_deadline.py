"""Issue 19 item 3: a hung or trickling scrape target cannot stall the others.

Real loopback HTTP servers: a good dcgm-exporter page, a target that sends its headers and then
one byte a second, one that trickles its headers, and one that sends more than the size cap.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pyarrow.parquet as pq
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [p for p in (str(ROOT / "tests"), str(ROOT)) if p not in sys.path]

from collectors.agent import Agent  # noqa: E402
from collectors.http_fetch import ScrapeDeadline, ScrapeTooLarge, fetch_text  # noqa: E402
from collectors.prometheus import PrometheusBackend  # noqa: E402
from collectors.spool import list_files  # noqa: E402
from test_collectors_prometheus import dcgm_text  # noqa: E402

GOOD = dcgm_text("hostname", "good-node").encode()


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server API
        try:
            if self.path == "/good":
                self.send_response(200)
                self.send_header("Content-Length", str(len(GOOD)))
                self.end_headers()
                self.wfile.write(GOOD)
            elif self.path == "/trickle":  # headers, then one byte a second for ever
                self.send_response(200)
                self.send_header("Content-Length", "100000")
                self.end_headers()
                while not self.server.closing.is_set():  # type: ignore[attr-defined]
                    self.wfile.write(b"#")
                    self.wfile.flush()
                    time.sleep(1.0)
            elif self.path == "/trickle-headers":  # the status line, then a header byte a second
                self.wfile.write(b"HTTP/1.1 200 OK\r\n")
                while not self.server.closing.is_set():  # type: ignore[attr-defined]
                    self.wfile.write(b"X")
                    self.wfile.flush()
                    time.sleep(1.0)
            elif self.path == "/huge":  # no Content-Length, a body past the cap
                self.send_response(200)
                self.end_headers()
                line = b"# padding " + b"x" * 1000 + b"\n"
                for _ in range(3000):
                    self.wfile.write(line)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, *args):
        pass


@pytest.fixture()
def server():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.daemon_threads = True
    srv.closing = threading.Event()  # type: ignore[attr-defined]
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.closing.set()  # type: ignore[attr-defined]
    srv.shutdown()
    srv.server_close()


@pytest.mark.parametrize("path", ["/trickle", "/trickle-headers"])
def test_the_deadline_is_per_request_not_per_read(server, path):
    t0 = time.monotonic()
    with pytest.raises(ScrapeDeadline):
        fetch_text(server + path, timeout_s=1.5)
    assert time.monotonic() - t0 < 2.5  # a per-read timeout would wait for ever: a byte comes every 1 s


def test_a_response_over_the_size_cap_is_refused(server):
    with pytest.raises(ScrapeTooLarge):
        fetch_text(server + "/huge", timeout_s=5, max_bytes=1_000_000)
    assert len(fetch_text(server + "/huge", timeout_s=5, max_bytes=10_000_000)) == 3000 * 1011


def test_agent_keeps_the_good_targets_ticks_beside_a_trickling_one(server, tmp_path):
    backend = PrometheusBackend([server + "/trickle", server + "/good", server + "/trickle-headers"],
                                node="scraper", timeout_s=3.0)
    agent = Agent(backend, tmp_path, node="scraper", interval_s=1.0, flush_interval_s=5.0)
    t0 = time.monotonic()
    stats = agent.run(duration_s=10.0, handle_signals=False)
    elapsed = time.monotonic() - t0
    backend.close()
    agent.close()
    good = [f for f in list_files(tmp_path, "device_samples") if "node=good-node" in str(f)]
    ticks = sum(pq.read_metadata(f).num_rows for f in good) / 2  # two GPUs per scrape
    assert ticks >= 9 and stats.sample_rounds >= 9, (ticks, stats)
    assert elapsed < 11.5
    # every trickling scrape ended at its deadline and was counted; none was started twice at once
    assert backend.errors_by_device[f"scrape:{server}/trickle"] >= 2
    assert backend.errors_by_device[f"scrape:{server}/trickle-headers"] >= 2
    assert f"scrape:{server}/good" not in backend.errors_by_device


def test_collect_command_honours_sigterm_promptly_with_a_hung_target(server, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipelines.cli", "collect", "--backend", "prometheus", "--url", server + "/trickle",
         "--url", server + "/good", "--interval-s", "1", "--flush-interval-s", "2", "--spool", str(tmp_path),
         "--node", "scraper", "--scrape-timeout-s", "30"],
        cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
    time.sleep(10.0)
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=20)
    stop_s = time.monotonic() - t0
    assert proc.returncode == 0, err
    assert stop_s < 3.0, stop_s  # not the 30 s scrape timeout
    good = [f for f in list_files(tmp_path, "device_samples") if "node=good-node" in str(f)]
    ticks = sum(pq.read_metadata(f).num_rows for f in good) / 2
    stats = json.loads(err.split("tokenwatt collect: done ", 1)[1])
    assert stats["stopped_by"] == "SIGTERM" and stats["sample_rounds"] >= 5  # the interpreter's start-up is not timed
    due = stats["sample_rounds"] + stats["missed_ticks"]
    assert ticks >= 0.9 * due, (ticks, stats)
