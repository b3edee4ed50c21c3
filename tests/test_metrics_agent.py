"""The agent's /metrics (``tokenwatt collect --metrics-port``), scraped on loopback from a real agent
process: per-device power (W) and energy (J) labelled by node, device, chip and vendor, the process's own
metrics, no timestamp that reads 0 before its event, ``promtool check metrics`` clean, and Debian's
real ``prometheus`` storing exactly the power readings the agent wrote to its spool.

Needs /usr/bin/prometheus and /usr/bin/promtool (Debian's ``prometheus``) for the last two; skipped
when they are missing, unless TOKENWATT_REQUIRE_PROMETHEUS=1.
"""
from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

if str(Path(__file__).resolve().parents[1]) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from collectors.spool import list_files  # noqa: E402
from tests.test_metrics_prometheus import PROMTOOL, _get, needs_prometheus, start_prometheus, wait_for  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEVICES = 3


def _start(spool: Path, *extra: str) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "collectors.agent", "--backend", "sim", "--node", "n1", "--sim-devices", str(DEVICES),
         "--spool", str(spool), "--metrics-port", "0", *extra],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        m = re.search(r"metrics on (http://\S+/metrics)", line)
        if m:
            return proc, m.group(1)
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise AssertionError("the agent did not print its metrics address")


def _stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=30)


def _samples(text: str, name: str) -> dict[frozenset, float]:
    out = {}
    for m in re.finditer(rf"^{name}\{{([^}}]*)\}} (\S+)$", text, re.M):
        labels = frozenset(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
        out[labels] = float(m.group(2))
    return out


def test_agent_metrics_per_device_process_and_no_zero_timestamps(tmp_path):
    proc, url = _start(tmp_path, "--interval-s", "0.1", "--flush-interval-s", "3600")
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # until every device has been sampled once
            _, text = _get(url)
            if len(_samples(text, "tokenwatt_device_power_watts")) == DEVICES:
                break
            time.sleep(0.05)
    finally:
        _stop(proc)
    assert proc.returncode == 0
    power = _samples(text, "tokenwatt_device_power_watts")
    assert {dict(k)["device"] for k in power} == {f"n1/{i}" for i in range(DEVICES)}
    for labels, w in power.items():
        d = dict(labels)
        assert d["node"] == "n1" and d["chip"] == "nvidia-h100-sxm" and d["vendor"] == "nvidia", d
        assert 0 < w < 1000
    energy = _samples(text, "tokenwatt_device_energy_joules_total")
    assert {dict(k)["device"] for k in energy} == {f"n1/{i}" for i in range(DEVICES)}
    assert all(j > 0 for j in energy.values())
    assert "# TYPE tokenwatt_device_energy_joules_total counter" in text
    for name in ("process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds",
                 "process_start_time_seconds"):
        assert re.search(rf"^{name} \S+$", text, re.M), name
    # the flush interval is an hour: no flush yet, so no last-flush sample (rather than a 0)
    assert not re.search(r"^tokenwatt_agent_last_flush_timestamp_seconds ", text, re.M)
    assert re.search(r"^tokenwatt_agent_start_timestamp_seconds \d", text, re.M)
    assert not re.search(r"^\w*timestamp_seconds(\{[^}]*\})? 0(\.0)?$", text, re.M)
    if PROMTOOL:
        r = subprocess.run([PROMTOOL, "check", "metrics"], input=text.encode(), capture_output=True, timeout=30)
        assert r.returncode == 0, r.stdout.decode() + r.stderr.decode()


def test_the_last_flush_time_appears_after_the_first_flush(tmp_path):
    proc, url = _start(tmp_path, "--interval-s", "0.1", "--flush-interval-s", "0.3")
    try:
        deadline, text = time.monotonic() + 20, ""
        while time.monotonic() < deadline and not list_files(tmp_path, "device_samples"):
            time.sleep(0.05)
        time.sleep(0.1)
        _, text = _get(url)
    finally:
        _stop(proc)
    t = float(re.search(r"^tokenwatt_agent_last_flush_timestamp_seconds (\S+)$", text, re.M).group(1))
    assert abs(t - time.time()) < 60


@needs_prometheus
def test_prometheus_stores_the_power_the_agent_wrote_to_its_spool(tmp_path):
    spool = tmp_path / "spool"
    proc, url = _start(spool, "--interval-s", "0.25", "--flush-interval-s", "1")
    prom, query = start_prometheus(tmp_path, "agent", urllib.parse.urlsplit(url).netloc)
    try:
        res = wait_for(query, "tokenwatt_device_power_watts[5m]",
                       lambda r: len(r) == DEVICES and all(len(x["values"]) >= 3 for x in r))
        assert len(res) == DEVICES, (tmp_path / "prometheus.log").read_text()[-2000:]
        up = query('up{job="agent"}')
        assert [r["value"][1] for r in up] == ["1"]
        cpu = query('process_cpu_seconds_total{job="agent"}')
        assert len(cpu) == 1 and float(cpu[0]["value"][1]) > 0
    finally:
        prom.terminate()
        prom.wait(timeout=30)
        _stop(proc)
    assert proc.returncode == 0
    table = pa.concat_tables([pq.read_table(f) for f in list_files(spool, "device_samples")])
    written: dict[str, set[float]] = {}
    for dev, w in zip(table.column("device_id").to_pylist(), table.column("power_w").to_pylist()):
        written.setdefault(dev, set()).add(w)
    for r in res:
        dev = r["metric"]["device"]
        assert r["metric"]["chip"] == "nvidia-h100-sxm" and r["metric"]["node"] == "n1"
        seen = {float(v) for _, v in r["values"]}
        assert seen <= written[dev], (dev, sorted(seen - written[dev])[:5])
