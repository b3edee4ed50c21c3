"""`tokenwatt import prometheus` against Debian's real Prometheus on loopback, scraping a tiny server
that serves dcgm-exporter text (current labels, MIG instances) and AMD exporter text (card_series,
an SPX GPU pair and a GPU in CPX mode whose partition 0 alone reports power and energy)."""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [p for p in (str(ROOT),) if p not in sys.path]

from collectors.exposition import parse_exposition  # noqa: E402
from collectors.prometheus_history import import_history  # noqa: E402
from collectors.spool import list_files  # noqa: E402

pytestmark = pytest.mark.skipif(shutil.which("prometheus") is None and not os.environ.get("TOKENWATT_REQUIRE_PROMETHEUS"),
                                reason="Debian's prometheus package is not installed (make test installs it)")

# (gpu, MIG instances with their GR engine activity or None)
DGX = [(0, {"1": 0.75, "2": 0.25}), (1, {"1": None, "2": None, "13": None}), (2, None)]
POWER_W = {0: 400.0, 1: 250.0, 2: 600.0}
AMD_POWER_W = {0: 700.0, 1: 300.0}
#: the CPX GPU's partitions (gpu_id 2-5 = partitions 0-3) with their gfx activity, and its power
CPX_ACTIVITY, CPX_POWER_W = (10, 20, 30, 40), 800.0


class Exporters:
    """Counters that grow with time; every served value is logged with the timestamp it carried."""

    def __init__(self):
        self.t0 = time.time()
        self.log = defaultdict(list)  # key -> [(ts_ms, counter in the exporter's unit)]
        self.texts = {}  # (path, ts_ms) -> text

    def dcgm(self, ts_ms):
        dt = ts_ms / 1000 - self.t0
        lines = ["# TYPE DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION counter", "# TYPE DCGM_FI_DEV_POWER_USAGE gauge"]
        for gpu, instances in DGX:
            energy_mj = 5e9 + POWER_W[gpu] * dt * 1000
            self.log[("dgx-1", gpu)].append((ts_ms, energy_mj))
            base = (f'gpu="{gpu}",UUID="GPU-{gpu:04d}",pci_bus_id="00000000:{gpu + 10}:00.0",device="nvidia{gpu}",'
                    f'modelName="NVIDIA H100 80GB HBM3",Hostname="dgx-1.example.internal",'
                    f'DCGM_FI_DRIVER_VERSION="560.35.03"')
            for gi, active in (instances or {None: None}).items():
                labels = base + (f',GPU_I_PROFILE="3g.40gb",GPU_I_ID="{gi}"' if gi else "")
                lines += [f"DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION{{{labels}}} {energy_mj:.3f} {ts_ms}",
                          f"DCGM_FI_DEV_POWER_USAGE{{{labels}}} {POWER_W[gpu]} {ts_ms}",
                          f"DCGM_FI_DEV_GPU_TEMP{{{labels}}} 61 {ts_ms}",
                          f"DCGM_FI_DEV_FB_USED{{{labels}}} 1234 {ts_ms}"]
                if active is not None:
                    lines.append(f"DCGM_FI_PROF_GR_ENGINE_ACTIVE{{{labels}}} {active} {ts_ms}")
        return "\n".join(lines) + "\n"

    def vllm(self, ts_ms):
        dt = ts_ms / 1000 - self.t0
        prompt, gen = 1000.0 + int(dt * 800), 500.0 + int(dt * 300)
        self.log[("vllm", "prompt")].append((ts_ms, prompt))
        labels = 'engine="0",model_name="llama-3.1-70b"'
        return "\n".join([
            "# TYPE vllm:prompt_tokens_total counter", f"vllm:prompt_tokens_total{{{labels}}} {prompt} {ts_ms}",
            "# TYPE vllm:generation_tokens_total counter", f"vllm:generation_tokens_total{{{labels}}} {gen} {ts_ms}",
            "# TYPE vllm:num_requests_running gauge", f"vllm:num_requests_running{{{labels}}} 7 {ts_ms}",
        ]) + "\n"

    def amd(self, ts_ms):
        dt = ts_ms / 1000 - self.t0
        lines = ["# TYPE gpu_energy_consumed gauge", "# TYPE gpu_package_power gauge"]
        for gpu, power in AMD_POWER_W.items():
            energy_uj = 1e12 + power * dt * 1e6
            self.log[("mi-node-1", gpu)].append((ts_ms, energy_uj))
            labels = (f'card_model="102-G30211-0C",card_series="AMD Instinct MI300X",card_vendor="AMD",gpu_id="{gpu}",'
                      f'gpu_uuid="5fff74a1-{gpu:04d}",hostname="mi-node-1",serial_number="69225100{gpu}"')
            labels += ',gpu_partition_id="0",gpu_compute_partition_type="SPX"'
            lines += [f"gpu_energy_consumed{{{labels}}} {energy_uj:.1f} {ts_ms}",
                      f"gpu_package_power{{{labels}}} {power} {ts_ms}",
                      f"gpu_gfx_activity{{{labels}}} 55 {ts_ms}"]
        energy_uj = 2e12 + CPX_POWER_W * dt * 1e6
        self.log[("mi-node-1", "cpx")].append((ts_ms, energy_uj))
        for part, activity in enumerate(CPX_ACTIVITY):
            labels = (f'card_model="102-G30211-0C",card_series="AMD Instinct MI300X",card_vendor="AMD",'
                      f'gpu_compute_partition_type="CPX",gpu_id="{2 + part}",gpu_partition_id="{part}",'
                      f'hostname="mi-node-1",serial_number="692251009"')
            if part == 0:
                lines.append(f"gpu_energy_consumed{{{labels}}} {energy_uj:.1f} {ts_ms}")
            lines += [f"gpu_package_power{{{labels}}} {CPX_POWER_W if part == 0 else 0} {ts_ms}",
                      f"gpu_gfx_activity{{{labels}}} {activity} {ts_ms}"]
        return "\n".join(lines) + "\n"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory):
    exporters = Exporters()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            ts_ms = int(time.time() * 1000)
            text = {"/dcgm": exporters.dcgm, "/amd": exporters.amd, "/vllm": exporters.vllm}[self.path](ts_ms)
            exporters.texts[(self.path, ts_ms)] = text
            body = text.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    target = f"127.0.0.1:{srv.server_address[1]}"
    work = tmp_path_factory.mktemp("prom")
    (work / "prometheus.yml").write_text(json.dumps({
        "global": {"scrape_interval": "1s", "scrape_timeout": "900ms"},
        "scrape_configs": [{"job_name": "dcgm", "metrics_path": "/dcgm", "static_configs": [{"targets": [target]}]},
                           {"job_name": "amd", "metrics_path": "/amd", "static_configs": [{"targets": [target]}]},
                           {"job_name": "vllm", "metrics_path": "/vllm", "static_configs": [{"targets": [target]}]}],
    }))
    port = free_port()
    proc = subprocess.Popen(["prometheus", f"--config.file={work / 'prometheus.yml'}",
                             f"--storage.tsdb.path={work / 'data'}", f"--web.listen-address=127.0.0.1:{port}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while len({k[0] for k in exporters.texts}) < 3 and time.time() < deadline:
        time.sleep(0.1)  # Prometheus takes a few seconds to start scraping
    start = min(k[1] for k in exporters.texts) / 1000
    time.sleep(12)  # ~12 scrapes of each target
    end = time.time()
    try:
        with urllib.request.urlopen(url + "/api/v1/query?query=up", timeout=5) as r:
            assert len(json.load(r)["data"]["result"]) == 3
        yield url, exporters, start, end
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        srv.shutdown()


def served_at(log, t):
    """The counter value Prometheus holds at instant t: the last sample at or before it."""
    return [v for ts, v in log if ts <= t * 1000][-1]


def read_rows(spool):
    return pa.concat_tables([pq.read_table(f) for f in list_files(spool, "device_samples")]).to_pylist()


def test_history_import_conserves_the_served_counters_and_splits_mig(prometheus, tmp_path):
    url, exporters, start, end = prometheus
    t_first, t_last = float(int(start) + 2), float(int(end) - 1)
    result = import_history(url, tmp_path, t_first, t_last, 1.0, "localhost", chunk_s=4)
    assert result["complete"] and result["chunks"] >= 2
    rows = read_rows(tmp_path)
    by_dev = defaultdict(list)
    for r in rows:
        by_dev[r["device_id"]].append(r)
    cpx = [f"mi-node-1/{2 + p}" for p in range(len(CPX_ACTIVITY))]
    assert sorted(by_dev) == ["dgx-1/0/1", "dgx-1/0/2", "dgx-1/1/1", "dgx-1/1/13", "dgx-1/1/2", "dgx-1/2",
                              "mi-node-1/0", "mi-node-1/1", *cpx]
    assert {r["chip"] for r in rows if r["vendor"] == "amd"} == {"amd-mi300x"}  # card_series, not card_model
    assert {r["chip"] for r in rows if r["vendor"] == "nvidia"} == {"nvidia-h100-sxm"}
    assert by_dev["dgx-1/0/1"][0]["device_uuid"] == "GPU-0000/1"

    def delta(dev):
        series = sorted(by_dev[dev], key=lambda r: r["ts"])
        assert series[0]["ts"].timestamp() == t_first and series[-1]["ts"].timestamp() == t_last
        return series[-1]["energy_counter_j"] - series[0]["energy_counter_j"]

    scale = {"dgx-1": 1e-3, "mi-node-1": 1e-6}  # mJ, uJ -> J
    for (host, gpu), log in exporters.log.items():
        if host == "vllm":
            continue
        served = (served_at(log, t_last) - served_at(log, t_first)) * scale[host]
        instances = cpx if gpu == "cpx" else [
            d for d in by_dev if d == f"{host}/{gpu}" or d.startswith(f"{host}/{gpu}/")]
        imported = sum(delta(d) for d in instances)
        assert served > 0 and imported == pytest.approx(served, rel=1e-3), (host, gpu)
    gpu0 = delta("dgx-1/0/1") + delta("dgx-1/0/2")
    assert delta("dgx-1/0/1") / gpu0 == pytest.approx(0.75, rel=1e-6)  # by GR engine activity
    assert delta("dgx-1/1/13") / (delta("dgx-1/1/1") + delta("dgx-1/1/2") + delta("dgx-1/1/13")) == pytest.approx(1 / 3)
    assert all(r["power_w"] == pytest.approx(100.0) for r in by_dev["dgx-1/0/2"])  # 400 W x 0.25
    # AMD CPX: partition 0's energy shared by gfx activity (40 of 100 for partition 3)
    assert delta(cpx[3]) / sum(delta(d) for d in cpx) == pytest.approx(0.4, rel=1e-6)
    assert all(r["power_w"] == pytest.approx(CPX_POWER_W * 0.2) for r in by_dev[cpx[1]])


def test_imported_rows_are_the_live_scrapers_rows(prometheus, tmp_path):
    url, exporters, start, end = prometheus
    t = float(int(start) + 5)
    import_history(url, tmp_path, t, t + 1, 1.0, "localhost")
    imported = {(r["device_id"], r["ts"].timestamp()): r for r in read_rows(tmp_path)}
    for path in ("/dcgm", "/amd"):
        ts_ms = max(k[1] for k in exporters.texts if k[0] == path and k[1] <= t * 1000)
        from datetime import datetime, timezone

        live = parse_exposition(exporters.texts[(path, ts_ms)], datetime.fromtimestamp(t, tz=timezone.utc), "x")
        for row in live.device_rows:
            got = imported[(row["device_id"], t)]
            assert {k: v for k, v in got.items() if k != "energy_counter_j"} == \
                   {k: v for k, v in row.items() if k != "energy_counter_j"}
            if "/" not in row["device_id"].split("/", 1)[1]:  # whole GPUs: the counter as served
                assert got["energy_counter_j"] == pytest.approx(row["energy_counter_j"])


def test_an_interrupted_import_resumes_and_a_rerun_duplicates_nothing(prometheus, tmp_path):
    url, _, start, end = prometheus
    a, b = float(int(start) + 2), float(int(end) - 1)
    once = tmp_path / "once"
    import_history(url, once, a, b, 1.0, "localhost", chunk_s=3)
    parts = tmp_path / "parts"
    first = import_history(url, parts, a, b, 1.0, "localhost", chunk_s=3, max_chunks=2)
    assert not first["complete"] and first["chunks_done"] == 2
    r = subprocess.run([sys.executable, "-m", "pipelines.cli", "import", "prometheus", "--url", url,
                        "--start", repr(a), "--end", repr(b), "--step", "1", "--chunk-s", "3", "--spool", str(parts)],
                       cwd=ROOT, capture_output=True, text=True, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["chunks_this_run"] == first["chunks"] - 2
    again = import_history(url, parts, a, b, 1.0, "localhost", chunk_s=3)
    assert again["chunks_this_run"] == 0
    key = lambda r: (r["device_id"], r["ts"])  # noqa: E731
    assert sorted(read_rows(parts), key=key) == sorted(read_rows(once), key=key)


def test_vllm_counters_are_imported_into_server_counters(prometheus, tmp_path):
    url, exporters, start, end = prometheus
    a, b = float(int(start) + 2), float(int(end) - 1)
    import_history(url, tmp_path, a, b, 1.0, "serve-1", chunk_s=5)
    files = sorted((tmp_path / "server_counters").rglob("*.parquet"))
    rows = pa.concat_tables([pq.read_table(f) for f in files]).to_pylist()
    assert len(rows) == int(b - a) + 1 and {(r["server"], r["model"], r["node"]) for r in rows} == {
        ("vllm", "llama-3.1-70b", "serve-1")}  # a loopback instance: the --node
    for r in rows:
        assert r["prompt_tokens_total"] == served_at(exporters.log[("vllm", "prompt")], r["ts"].timestamp())
        assert r["requests_running"] == 7
