"""The sampling agent: crash safety (SIGKILL), clean stop (SIGTERM), schedule, buffer, metrics."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [p for p in (str(ROOT / "tests"), str(ROOT)) if p not in sys.path]

from collectors.agent import Agent, serve_metrics  # noqa: E402
from collectors.base import BackendBase  # noqa: E402
from collectors.schema import DEVICE_SAMPLES  # noqa: E402
from collectors.sim.live import SimLiveBackend  # noqa: E402
from collectors.spool import list_files  # noqa: E402


def start_agent(spool: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "collectors.agent", "--backend", "sim", "--node", "n1", "--sim-devices", "4",
         "--spool", str(spool), *extra],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def wait_for_files(spool: Path, count: int, timeout_s: float = 15.0) -> list[Path]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        files = list_files(spool, "device_samples")
        if len(files) >= count:
            return files
        time.sleep(0.02)
    raise AssertionError(f"fewer than {count} spool files after {timeout_s} s")


def read_spool(spool: Path) -> pa.Table:
    return pa.concat_tables([pq.read_table(f) for f in list_files(spool, "device_samples")])


def test_sigkill_leaves_only_whole_files_and_a_restart_appends_without_duplicates(tmp_path):
    proc = start_agent(tmp_path, "--interval-s", "0.02", "--flush-interval-s", "0.1")
    try:
        wait_for_files(tmp_path, 3)
        time.sleep(0.13)  # land somewhere in the middle of a flush interval
    finally:
        killed_at_s = time.time()
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    first_run = {f: f.stat().st_mtime_ns for f in list_files(tmp_path, "device_samples")}
    for f in tmp_path.rglob("*.parquet"):  # every visible file is whole and in the schema
        if not f.name.startswith("."):
            assert pq.read_table(f).schema.equals(DEVICE_SAMPLES), f
    spooled = read_spool(tmp_path)
    rows_first = spooled.num_rows
    assert rows_first > 0 and rows_first % 4 == 0
    newest_s = max(t.timestamp() for t in spooled["ts"].to_pylist())
    assert killed_at_s - newest_s < 0.1 + 1.0  # at most about one flush interval lost (plus slack)

    proc = start_agent(tmp_path, "--interval-s", "0.02", "--flush-interval-s", "0.1", "--duration-s", "0.5")
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    files = list_files(tmp_path, "device_samples")
    assert {f: f.stat().st_mtime_ns for f in files if f in first_run} == first_run  # old files untouched
    new_files = [f for f in files if f not in first_run]
    assert new_files and min(f.name for f in new_files) > max(f.name for f in first_run)  # names sort by run
    table = read_spool(tmp_path)
    keys = list(zip(table["device_id"].to_pylist(), table["ts"].to_pylist()))
    assert len(keys) == len(set(keys)) > rows_first
    assert set(table["device_id"].to_pylist()) == {f"n1/{i}" for i in range(4)}


def test_sigterm_flushes_everything_sampled_and_exits_zero(tmp_path):
    proc = start_agent(tmp_path, "--interval-s", "0.02", "--flush-interval-s", "60")
    try:
        for line in proc.stderr:  # wait until the signal handlers are in place
            if "agent started" in line:
                break
        time.sleep(0.4)
        assert list_files(tmp_path, "device_samples") == []  # nothing flushed yet
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    done = json.loads(err.split("tokenwatt collect: done ", 1)[1].splitlines()[0])
    assert done["stopped_by"] == "SIGTERM"
    assert done["samples_total"] >= 4 * 5
    assert read_spool(tmp_path).num_rows == done["samples_total"] == done["rows_written"]
    assert "Traceback" not in err


class _Recorder(BackendBase):
    """Records the monotonic time of every tick; one tick overruns."""

    source = "sim"

    def __init__(self, slow_tick: int, slow_s: float) -> None:
        super().__init__("t")
        self.times: list[float] = []
        self.slow_tick, self.slow_s = slow_tick, slow_s

    def sample(self):
        self.times.append(time.monotonic())
        if len(self.times) == self.slow_tick:
            time.sleep(self.slow_s)
        return []


def test_schedule_is_drift_free_and_skips_and_counts_missed_ticks(tmp_path):
    interval = 0.1  # 30 ms of scheduling slack below: wide enough for a loaded 2-core CI runner
    backend = _Recorder(slow_tick=3, slow_s=0.25)
    agent = Agent(backend, tmp_path, interval_s=interval, flush_interval_s=10)
    t0 = time.monotonic()
    stats = agent.run(duration_s=1.5, handle_signals=False)
    agent.close()
    offsets = [(t - t0) / interval for t in backend.times]
    ticks = [round(x) for x in offsets]
    assert max(abs(x - k) for x, k in zip(offsets, ticks)) < 0.3  # every tick on the grid: no drift
    assert ticks == sorted(set(ticks))
    assert stats.missed_ticks == len(range(ticks[0], ticks[-1] + 1)) - len(ticks) >= 2
    assert ticks[2] + 1 not in ticks and ticks[2] + 2 not in ticks  # ticks due during the overrun were skipped
    assert stats.sample_rounds == len(ticks)


def test_a_full_buffer_drops_the_oldest_rows_and_a_failed_flush_keeps_them(tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the spool should be")
    clock = iter(float(1_750_000_000 + i) for i in range(1000))
    backend = SimLiveBackend(node="n1", devices=2, clock=lambda: next(clock))
    agent = Agent(backend, blocker, interval_s=1, flush_interval_s=1, max_buffer_rows=10)
    for _ in range(3):
        agent.sample_once()
    assert agent.flush() == [] and agent.stats.flush_errors == 1
    assert agent.buffered_rows() == 6  # kept for the next try
    for _ in range(4):
        agent.sample_once()  # 14 rows into a 10-row buffer
    assert agent.stats.dropped_rows == 4 and agent.buffered_rows() == 10
    agent.spool = tmp_path / "spool"
    (path,) = agent.flush()
    table = pq.read_table(path)
    assert table.num_rows == 10
    kept = sorted({t.timestamp() for t in table["ts"].to_pylist()})
    assert kept == [1_750_000_002.0 + i for i in range(5)]  # the two oldest ticks went
    assert agent.stats.rows_written == 10 and agent.buffered_rows() == 0
    agent.close()


def test_stale_temporary_files_of_this_node_are_removed_at_start(tmp_path):
    part = tmp_path / "device_samples" / "date=2025-06-15" / "node=n1"
    part.mkdir(parents=True)
    stale = part / ".n1-1-000001.parquet.abc.tmp"
    fresh = part / ".n1-2-000001.parquet.def.tmp"
    other = part / ".n10-1-000001.parquet.abc.tmp"
    for f in (stale, fresh, other):
        f.write_bytes(b"PAR1 half a file")
    os.utime(stale, (1, 1))
    os.utime(other, (1, 1))
    agent = Agent(SimLiveBackend(node="n1", devices=1), tmp_path, interval_s=1, flush_interval_s=1)
    assert agent.remove_stale_temp_files() == 1
    assert not stale.exists() and fresh.exists() and other.exists()
    agent.close()


def test_flush_names_sort_and_do_not_collide(tmp_path):
    backend = SimLiveBackend(node="n/1", devices=1)
    agent = Agent(backend, tmp_path, interval_s=1, flush_interval_s=1)
    names = []
    for _ in range(3):
        agent.sample_once()
        names += [p.name for p in agent.flush()]
    assert len(set(names)) == 3 and names == sorted(names)
    assert all(n.startswith("n_1-") and n.endswith(f"-{i + 1:06d}.parquet") for i, n in enumerate(names))
    agent.close()


def test_agent_metrics_endpoint(tmp_path):
    backend = SimLiveBackend(node="n1", devices=3)
    backend.errors_by_device["n1/2"] = 4
    agent = Agent(backend, tmp_path, interval_s=1, flush_interval_s=1)
    server = serve_metrics(agent, 0)
    try:
        agent.sample_once()
        agent.sample_once()
        agent.flush()
        url = f"http://127.0.0.1:{server.server_address[1]}/metrics"
        text = urllib.request.urlopen(url, timeout=5).read().decode()
    finally:
        server.shutdown()
        server.server_close()
        agent.close()
    assert "tokenwatt_agent_samples_total 6.0" in text
    assert 'tokenwatt_agent_device_errors_total{device="n1/2"} 4.0' in text
    assert "tokenwatt_agent_missed_ticks_total 0.0" in text
    assert "tokenwatt_agent_rows_rejected_total 0.0" in text
    last_flush = float(text.split("\ntokenwatt_agent_last_flush_timestamp_seconds ")[1].split()[0])
    assert abs(last_flush - time.time()) < 60
