"""The Prometheus backend against a real HTTP server on 127.0.0.1 serving exporter text."""
from __future__ import annotations

import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pyarrow.parquet as pq
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [p for p in (str(ROOT / "tests"), str(ROOT)) if p not in sys.path]

from collectors.agent import Agent  # noqa: E402
from collectors.base import rows_to_table  # noqa: E402
from collectors.factory import get_backend  # noqa: E402
from collectors.prometheus import SERVER_COUNTERS, PrometheusBackend, write_server_counters  # noqa: E402
from collectors.schema import DEVICE_SAMPLES  # noqa: E402
from collectors.spool import list_files  # noqa: E402


def dcgm_text(host_label: str, host: str, extra: str = "") -> str:
    lines = []
    for gpu, uuid, power, energy_mj, fb in ((0, "GPU-aaa", 512.25, 123_456_789, 61_000), (1, "GPU-bbb", 99.5, 5_000, 0)):
        labels = (f'gpu="{gpu}",UUID="{uuid}",device="nvidia{gpu}",modelName="NVIDIA H100 80GB HBM3",'
                  f'{host_label}="{host}",DCGM_FI_DRIVER_VERSION="550.54.15"{extra}')
        lines += [
            f"DCGM_FI_DEV_POWER_USAGE{{{labels}}} {power}",
            f"DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION{{{labels}}} {energy_mj}",
            f"DCGM_FI_DEV_GPU_UTIL{{{labels}}} 87",
            f"DCGM_FI_DEV_FB_USED{{{labels}}} {fb}",
            f"DCGM_FI_DEV_GPU_TEMP{{{labels}}} 64",
            f"DCGM_FI_DEV_SM_CLOCK{{{labels}}} 1980",
        ]
    head = (
        "# HELP DCGM_FI_DEV_POWER_USAGE Power draw (in W).\n# TYPE DCGM_FI_DEV_POWER_USAGE gauge\n"
        "# HELP DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION Total energy consumption since boot (in mJ).\n"
        "# TYPE DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION counter\n"
    )
    return head + "\n".join(lines) + "\n"


AMD_TEXT = """# HELP gpu_package_power Current socket power in Watts
# TYPE gpu_package_power gauge
gpu_package_power{card_model="AMD Instinct MI300X",gpu_id="0",gpu_uuid="5fff74a1-0000-1000-80aa-5e6c5a1a3d01",hostname="mi-node-3",serial_number="692251001124"} 748
gpu_package_power{card_model="AMD Instinct MI300X",gpu_id="1",gpu_uuid="5fff74a1-0000-1000-80aa-5e6c5a1a3d02",hostname="mi-node-3",serial_number="692251001125"} 231
# TYPE gpu_power_usage gauge
gpu_power_usage{card_model="AMD Instinct MI300X",gpu_id="0",hostname="mi-node-3"} 700
# TYPE gpu_energy_consumed gauge
gpu_energy_consumed{card_model="AMD Instinct MI300X",gpu_id="0",hostname="mi-node-3"} 2.5e+12
# TYPE gpu_gfx_activity gauge
gpu_gfx_activity{card_model="AMD Instinct MI300X",gpu_id="0",hostname="mi-node-3"} 97
# TYPE gpu_used_vram gauge
gpu_used_vram{card_model="AMD Instinct MI300X",gpu_id="0",hostname="mi-node-3"} 183265
# TYPE gpu_junction_temperature gauge
gpu_junction_temperature{card_model="AMD Instinct MI300X",gpu_id="0",hostname="mi-node-3"} 76
# TYPE gpu_clock gauge
gpu_clock{card_model="AMD Instinct MI300X",clock_index="0",clock_type="GPU_CLOCK_TYPE_MEMORY",gpu_id="0",hostname="mi-node-3"} 1300
gpu_clock{card_model="AMD Instinct MI300X",clock_index="0",clock_type="GPU_CLOCK_TYPE_SYSTEM",gpu_id="0",hostname="mi-node-3"} 2100
"""

VLLM_TEXT = """# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="llama-3.1-70b"} 12.0
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{engine="0",model_name="llama-3.1-70b"} 3.0
# HELP vllm:prompt_tokens_total Number of prefill tokens processed.
# TYPE vllm:prompt_tokens_total counter
vllm:prompt_tokens_total{engine="0",model_name="llama-3.1-70b"} 81234.0
# TYPE vllm:generation_tokens_total counter
vllm:generation_tokens_total{engine="0",model_name="llama-3.1-70b"} 40321.0
# TYPE vllm:request_success_total counter
vllm:request_success_total{engine="0",finished_reason="stop",model_name="llama-3.1-70b"} 90.0
vllm:request_success_total{engine="0",finished_reason="length",model_name="llama-3.1-70b"} 10.0
vllm:request_success_total{engine="0",finished_reason="abort",model_name="llama-3.1-70b"} 2.0
"""

PAGES = {
    "/dcgm-old": dcgm_text("Hostname", "dgx-a"),
    "/dcgm-new": dcgm_text("hostname", "dgx-b", ',pci_bus_id="00000000:19:00.0"'),
    "/amd": AMD_TEXT,
    "/vllm": VLLM_TEXT,
    "/dcgm-fqdn": dcgm_text("hostname", "GPU-7.Example.Internal"),
    "/dcgm-hostile": dcgm_text("hostname", "dgx-h") + "\n".join([
        'DCGM_FI_DEV_POWER_USAGE{gpu="3000000000",UUID="GPU-x",modelName="NVIDIA H100 80GB HBM3",hostname="dgx-h"} 100',
        'DCGM_FI_DEV_POWER_USAGE{gpu="abc",UUID="GPU-y",modelName="NVIDIA H100 80GB HBM3",hostname="dgx-h"} 100',
        'DCGM_FI_DEV_POWER_USAGE{gpu="5",UUID="GPU-z",modelName="NVIDIA H100 80GB HBM3",hostname="bad\\nhost"} 100',
        'DCGM_FI_DEV_POWER_MGMT_LIMIT{gpu="0",UUID="GPU-aaa",modelName="NVIDIA H100 80GB HBM3",hostname="dgx-h"} NaN',
    ]) + "\n",
    "/dcgm-ec2": dcgm_text("Hostname", "ip-100-64-171-120.ec2.internal"),
}


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server API
        self.server.hits.append(self.path)  # type: ignore[attr-defined]
        body = PAGES.get(self.path)
        if body is None:
            self.send_error(500, "exporter broken")
            return
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def exporter():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.hits = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def by_id(rows):
    return {r["device_id"]: r for r in rows}


@pytest.mark.parametrize("path, host", [("/dcgm-old", "dgx-a"), ("/dcgm-new", "dgx-b")])
def test_dcgm_exporter_rows_in_both_host_label_spellings(exporter, path, host):
    rows = by_id(PrometheusBackend([exporter + path], node="scraper").sample())
    assert sorted(rows) == [f"{host}/0", f"{host}/1"]
    r = rows[f"{host}/0"]
    assert r["node"] == host and r["device_index"] == 0 and r["device_uuid"] == "GPU-aaa"
    assert (r["chip"], r["vendor"], r["source"]) == ("nvidia-h100-sxm", "nvidia", "dcgm-exporter")
    assert (r["power_w"], r["power_kind"]) == (512.25, "avg_1s")
    assert r["energy_counter_j"] == pytest.approx(123_456.789)  # mJ -> J
    assert (r["utilization_pct"], r["memory_used_mib"], r["temperature_c"], r["sm_clock_mhz"]) == (87, 61_000, 64, 1980)
    assert rows_to_table(list(rows.values())).schema.equals(DEVICE_SAMPLES)


def test_amd_device_metrics_exporter_rows(exporter):
    rows = by_id(PrometheusBackend([exporter + "/amd"]).sample())
    assert sorted(rows) == ["mi-node-3/0", "mi-node-3/1"]
    r = rows["mi-node-3/0"]
    assert (r["chip"], r["vendor"], r["source"]) == ("amd-mi300x", "amd", "amd-exporter")
    assert (r["power_w"], r["power_kind"]) == (748, "instant")  # package power preferred over power_usage
    assert r["energy_counter_j"] == pytest.approx(2.5e6)  # uJ -> J
    assert (r["utilization_pct"], r["memory_used_mib"], r["temperature_c"]) == (97, 183265, 76)
    assert r["sm_clock_mhz"] == 2100  # the system clock, not the memory clock
    assert r["device_uuid"] == "5fff74a1-0000-1000-80aa-5e6c5a1a3d01"
    assert rows["mi-node-3/1"]["energy_counter_j"] is None


def test_vllm_counters_are_a_separate_result_summed_over_labels(exporter):
    b = PrometheusBackend([exporter + "/vllm"], node="serve-1")
    assert b.sample() == []  # no device rows from an inference server
    (c,) = b.drain_server_counters()
    assert (c.server, c.model, c.node) == ("vllm", "llama-3.1-70b", "serve-1")
    assert (c.prompt_tokens_total, c.generation_tokens_total, c.request_success_total) == (81234, 40321, 102)
    assert (c.requests_running, c.requests_waiting) == (12, 3)
    assert b.drain_server_counters() == []


def test_server_counters_write_to_their_own_spool_kind(exporter, tmp_path):
    b = PrometheusBackend([exporter + "/vllm"], node="serve-1")
    b.sample()
    b.sample()
    paths = write_server_counters(tmp_path, b.drain_server_counters(), "serve-1-1-000001")
    assert len(paths) == 1 and "server_counters" in paths[0].parts and "node=serve-1" in paths[0].parts
    table = pq.read_table(paths[0])
    assert table.schema.equals(SERVER_COUNTERS) and table.num_rows == 2


def test_a_broken_exporter_is_counted_and_the_other_urls_still_scraped(exporter):
    b = get_backend("prometheus", urls=[exporter + "/broken", exporter + "/amd", "http://127.0.0.1:9/none"], node="x")
    rows = b.sample()
    assert {r["node"] for r in rows} == {"mi-node-3"}
    assert b.errors_by_device == {f"scrape:{exporter}/broken": 1, "scrape:http://127.0.0.1:9/none": 1}


def test_agent_spools_exporter_rows_under_each_hosts_partition(exporter, tmp_path):
    backend = PrometheusBackend([exporter + "/dcgm-old", exporter + "/dcgm-new", exporter + "/vllm"], node="scraper")
    agent = Agent(backend, tmp_path, node="scraper", interval_s=0.1, flush_interval_s=5.0)
    stats = agent.run(duration_s=0.25, handle_signals=False)
    agent.close()
    files = list_files(tmp_path, "device_samples")
    assert {f.parent.name for f in files} == {"node=dgx-a", "node=dgx-b"}
    assert sum(pq.read_metadata(f).num_rows for f in files) == stats.samples_total == 4 * stats.sample_rounds
    counters = sorted((tmp_path / "server_counters").rglob("*.parquet"))
    assert sum(pq.read_metadata(f).num_rows for f in counters) == stats.sample_rounds


def test_exporter_host_labels_are_one_node_name_fqdn_case_and_aliases(exporter):
    rows = PrometheusBackend([exporter + "/dcgm-fqdn"], node="scraper").sample()
    assert {r["node"] for r in rows} == {"gpu-7"} and {r["device_id"] for r in rows} == {"gpu-7/0", "gpu-7/1"}
    b = PrometheusBackend([exporter + "/dcgm-ec2", exporter + "/vllm"], node="Serve-1.local",
                          aliases={"ip-100-64-171-120.ec2.internal": "gpu-9"})
    assert {r["node"] for r in b.sample()} == {"gpu-9"}
    assert {c.node for c in b.drain_server_counters()} == {"serve-1"}  # the backend's own node, normalised too


def test_hostile_series_are_skipped_with_a_reason_and_the_rest_of_the_page_kept(exporter, tmp_path):
    b = PrometheusBackend([exporter + "/dcgm-hostile"], node="scraper")
    rows = by_id(b.sample())
    assert sorted(rows) == ["dgx-h/0", "dgx-h/1"]  # the good series, whole
    assert rows["dgx-h/0"]["power_limit_w"] is None  # a NaN reading is no reading
    assert b.errors_by_device == {f"series:{exporter}/dcgm-hostile": 1}
    assert "4 series skipped" in str(b.last_error[f"series:{exporter}/dcgm-hostile"])
    agent = Agent(b, tmp_path, node="scraper", interval_s=0.1, flush_interval_s=5.0)
    stats = agent.run(duration_s=0.25, handle_signals=False)
    agent.close()
    assert stats.flush_errors == 0 and sum(pq.read_metadata(f).num_rows for f in list_files(tmp_path, "device_samples")) \
        == stats.samples_total > 0
