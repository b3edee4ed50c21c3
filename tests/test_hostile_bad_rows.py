"""Issue 19, class 4: one bad row must not block later writes.

The real agent (``python -m collectors.agent --backend prometheus``) scrapes a loopback exporter
whose second GPU has the label ``gpu="3000000000"`` (does not fit the spool's int32 device index):
every flush still writes the good GPU's rows, the bad rows are kept under ``<spool>/rejects/`` with
field and reason, and the agent exits 1 because rows were lost. The variants: an exporter host
name with a control character, a node whose partition cannot be written (the other node's rows are
written, the blocked ones kept for the next flush), and the request logger with
``prompt_tokens=2**70`` followed by 50 good records.
"""
from __future__ import annotations

import subprocess
import sys
import threading
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [p for p in (str(ROOT),) if p not in sys.path]

from collectors.base import BackendBase  # noqa: E402
from collectors.rejects import read_rejects  # noqa: E402
from collectors.requestlog import RequestLogger, write_requests  # noqa: E402
from collectors.sampler import Agent  # noqa: E402
from collectors.spool import list_files  # noqa: E402

T = 1_750_000_000.0


def dcgm(host: str, gpu: str, power: float) -> str:
    labels = f'gpu="{gpu}",UUID="GPU-{gpu}",modelName="NVIDIA H100 80GB HBM3",Hostname="{host}"'
    return f"DCGM_FI_DEV_POWER_USAGE{{{labels}}} {power}\nDCGM_FI_DEV_GPU_UTIL{{{labels}}} 50\n"


@pytest.fixture
def exporter():
    """A loopback exporter serving whatever text the test sets."""
    state = {"text": ""}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            body = state["text"].encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state, f"http://127.0.0.1:{server.server_address[1]}/metrics"
    server.shutdown()
    server.server_close()


def run_agent(spool: Path, url: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "collectors.agent", "--backend", "prometheus", "--url", url, "--node", "h1",
         "--interval-s", "0.2", "--flush-interval-s", "0.4", "--duration-s", "2.4", "--spool", str(spool)],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )


def spool_rows(spool: Path) -> pa.Table:
    files = list_files(spool, "device_samples")
    return pa.concat_tables([pq.read_table(f) for f in files]) if files else pa.table({})


def test_a_gpu_label_out_of_range_costs_its_rows_only_and_the_agent_exits_non_zero(tmp_path, exporter):
    state, url = exporter
    state["text"] = dcgm("h1", "0", 350.5) + dcgm("h1", "3000000000", 351.0)
    proc = run_agent(tmp_path / "spool", url)
    assert proc.returncode == 1, proc.stderr
    assert "rows lost" in proc.stderr
    files = list_files(tmp_path / "spool", "device_samples")
    assert len(files) >= 2  # flush after flush, not blocked by the first bad row
    table = spool_rows(tmp_path / "spool")
    assert set(table["device_id"].to_pylist()) == {"h1/0"} and table.num_rows >= 8
    rejects = read_rejects(tmp_path / "spool", "device_samples")
    # the exporter text has the bad GPU in two series (power, energy): both refused on every scrape
    assert len(rejects) >= table.num_rows
    assert {r["field"] for r in rejects} == {"device_index"}
    assert all("3000000000" in r["reason"] and "device index" in r["reason"] for r in rejects)


def test_a_host_name_with_a_control_character_is_rejected_and_the_good_host_written(tmp_path, exporter):
    state, url = exporter
    state["text"] = dcgm("h1", "0", 300.0) + dcgm("bad\\nhost", "0", 310.0)
    proc = run_agent(tmp_path / "spool", url)
    assert proc.returncode == 1, proc.stderr
    table = spool_rows(tmp_path / "spool")
    assert set(table["node"].to_pylist()) == {"h1"} and table.num_rows >= 8
    rejects = read_rejects(tmp_path / "spool", "device_samples")
    assert rejects and {r["field"] for r in rejects} == {"node"}
    assert all("control character" in r["reason"] for r in rejects)


def test_a_clean_run_still_exits_zero_with_no_rejects(tmp_path, exporter):
    state, url = exporter
    state["text"] = dcgm("h1", "0", 300.0) + dcgm("h1", "1", 301.0)
    proc = run_agent(tmp_path / "spool", url)
    assert proc.returncode == 0, proc.stderr
    assert set(spool_rows(tmp_path / "spool")["device_id"].to_pylist()) == {"h1/0", "h1/1"}
    assert read_rejects(tmp_path / "spool", "device_samples") == []


class TwoNodes(BackendBase):
    source = "test"

    def __init__(self):
        super().__init__("a")
        self.tick = 0

    def sample(self):
        self.tick += 1
        ts = datetime.fromtimestamp(T + self.tick, tz=timezone.utc)
        return [{"ts": ts, "node": node, "device_id": f"{node}/0", "device_index": 0, "chip": "c",
                 "vendor": "nvidia", "power_w": 100.0, "power_kind": "instant", "source": "test"}
                for node in ("a", "b")]


def test_a_node_whose_write_fails_does_not_block_the_other_node(tmp_path):
    spool = tmp_path / "spool"
    day = datetime.fromtimestamp(T, tz=timezone.utc).strftime("%Y-%m-%d")
    blocked = spool / "device_samples" / f"date={day}" / "node=a"
    blocked.parent.mkdir(parents=True)
    blocked.write_text("a file where node a's partition should be")
    agent = Agent(TwoNodes(), spool, interval_s=1, flush_interval_s=1)
    for _ in range(3):
        agent.sample_once()
    paths = agent.flush()
    assert [p.parent.name for p in paths] == ["node=b"]
    assert agent.stats.rows_written == 3 and agent.buffered_rows() == 3 and agent.stats.flush_errors == 1
    blocked.unlink()
    agent.sample_once()
    assert sorted(p.parent.name for p in agent.flush()) == ["node=a", "node=b"]
    assert agent.stats.rows_written == 8 and agent.rows_lost() == 0
    agent.close()


def good_request(i: int) -> dict:
    return {"request_id": f"r{i}", "model": "m", "arrival_time": T + i, "finished_time": T + i + 1,
            "prompt_tokens": 10, "completion_tokens": 5}


def test_the_request_logger_rejects_2_pow_70_tokens_and_writes_the_next_50(tmp_path):
    logger = RequestLogger(tmp_path, node="n", flush_every_n=1000, flush_interval_s=3600, background=True)
    assert logger.log("huge", "m", T, T + 1, 2**70, 5) is False
    assert all(logger.log(f"r{i}", "m", T + i, T + i + 1, 10, 5) for i in range(50))
    logger.close()
    table = pa.concat_tables([pq.read_table(f) for f in list_files(tmp_path, "requests")])
    assert sorted(table["request_id"].to_pylist()) == sorted(f"r{i}" for i in range(50))
    assert logger.stats.rejected == 1 and logger.stats.written_rows == 50
    assert "prompt_tokens" in logger.stats.last_reject
    (rej,) = read_rejects(tmp_path, "requests")
    assert rej["field"] == "usage.prompt_tokens" and rej["row"]["request_id"] == "huge"


def test_a_row_the_schema_cannot_hold_is_refused_at_write_and_costs_only_itself(tmp_path):
    from collectors.requestlog import record_to_row

    rows = [record_to_row(good_request(i), "n") for i in range(50)]
    bad = dict(rows[7], request_id="bad", completion_tokens=2**70)  # bypassing the record checks
    result = write_requests(tmp_path, rows[:25] + [bad] + rows[25:], "part")
    assert len(result.files) == 1 and not result.unwritten
    assert pq.read_table(result.files[0]).num_rows == 50
    (rej,) = result.rejects
    assert rej.field == "completion_tokens" and "int64" in rej.reason
