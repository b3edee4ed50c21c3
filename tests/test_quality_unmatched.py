"""Issue 13: a node seen as ``gpu-7.example.internal`` by the exporter and ``gpu-7`` by the request
telemetry joins; a deliberately unmatched node shows in the data-quality mart and page; scraped
vllm:* server counters are compared with the request telemetry (missing requests reported).

One real `tokenwatt run` (load, attribution, dbt) and a real site build over a small spool.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [p for p in (str(ROOT), str(ROOT / "tests")) if p not in sys.path]

from collectors.exposition import ServerCounters, parse_exposition  # noqa: E402
from collectors.prometheus import write_server_counters  # noqa: E402
from collectors.requestlog import RequestLogger  # noqa: E402
from collectors.schema import DEVICE_SAMPLES  # noqa: E402
from ingest_builders import DAY, T0, put, replicas  # noqa: E402

URL = "http://gpu-7:8000/metrics"
N_REQ = 40
LOST = {7, 8, 30}  # requests the server served and counted, that the telemetry never got


def _exporter(spool: Path) -> None:
    """1 h of dcgm-exporter scrapes: gpu-7 (2 GPUs, FQDN host label) and gpu-8 (1 GPU, serves nothing)."""
    rows = []
    for i in range(360):
        t = DAY + dt.timedelta(seconds=5 + 10 * i)
        text = ""
        for host, gpus in (("GPU-7.example.internal", 2), ("gpu-8.example.internal", 1)):
            for g in range(gpus):
                labels = f'gpu="{g}",UUID="GPU-{host[:5]}{g}",modelName="NVIDIA H100 80GB HBM3",Hostname="{host}"'
                text += (f"DCGM_FI_DEV_POWER_USAGE{{{labels}}} 400\n"
                         f"DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION{{{labels}}} {1e9 + 400_000 * 10 * i:.0f}\n")
        rows += parse_exposition(text, t, "scraper", "http://exporter/metrics").device_rows
    for node in ("gpu-7", "gpu-8"):
        put(spool, "device_samples", "dcgm", pa.Table.from_pylist([r for r in rows if r["node"] == node],
                                                                  schema=DEVICE_SAMPLES), node=node)


def _requests(spool: Path) -> list[float]:
    """rep7 on gpu-7 (its telemetry names the host by FQDN, minus the LOST requests); rep9 on gpu-9, a
    node no exporter reports. Returns the finish times of every request rep7 served."""
    finish = []
    with RequestLogger(spool, node="GPU-7.example.internal", background=False) as logger:
        for i in range(N_REQ):
            a = T0 + 60 + 60 * i
            finish.append(a + 4)
            if i not in LOST:
                assert logger.log(f"q{i}", "llama-3.1-70b", a, a + 4, 100 + i, 20, first_token_time=a + 0.5,
                                  replica_id="rep7")
    with RequestLogger(spool, node="gpu-9", background=False) as logger:
        for i in range(5):
            assert logger.log(f"z{i}", "llama-3.1-8b", T0 + 100 + i, T0 + 102 + i, 10, 10, replica_id="rep9")
    put(spool, "replicas", "rep7", replicas("rep7", "gpu-7", ("gpu-7/0", "gpu-7/1"), "llama-3.1-70b", t=T0),
        node="gpu-7")
    put(spool, "replicas", "rep9", replicas("rep9", "gpu-9", ("gpu-9/0",), "llama-3.1-8b", t=T0), node="gpu-9")
    return finish


def _server_counters(spool: Path, finish: list[float]) -> None:
    """vllm:* counters of rep7's server every 15 s; it restarts at 20 min (counters back to 0)."""
    out, restart = [], T0 + 1200
    for k in range(1, 200):
        ts = T0 + 15 * k
        since = T0 if ts < restart else restart
        done = [i for i, f in enumerate(finish) if since < f <= ts]
        out.append(ServerCounters(dt.datetime.fromtimestamp(ts, dt.timezone.utc), "gpu-7", URL, "vllm",
                                  "llama-3.1-70b", prompt_tokens_total=float(sum(100 + i for i in done)),
                                  generation_tokens_total=20.0 * len(done), request_success_total=float(len(done))))
    write_server_counters(spool, out, "vllm-scrape")


@pytest.mark.slow
def test_unmatched_nodes_and_lost_requests_show_in_the_mart_and_on_the_page(tmp_path):
    home = tmp_path / "home"
    spool = home / "spool"
    _exporter(spool)
    finish = _requests(spool)
    _server_counters(spool, finish)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TOKENWATT_FRESHNESS_REFERENCE": "data"}
    r = subprocess.run([sys.executable, "-m", "pipelines.cli", "run", "--home", str(home)], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=1200)
    assert "Traceback" not in r.stderr, r.stderr[-4000:]
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    dq = con.execute("""select node, kind, reason, rows from marts.fct_data_quality_daily
                        where kind in ('requests', 'device_samples', 'server_counters')
                          and reason not like 'sampling gap%' order by node, reason""").fetchall()
    assert dq == [("gpu-7", "server_counters", "replica-hours whose tokens differ from the server counters beyond tolerance",
                   1),  # the hour the lost requests finished in (the whole test is in 00:00-01:00)
                  ("gpu-7", "server_counters", "requests counted by the server, missing from the request telemetry",
                   len(LOST)),
                  ("gpu-8", "device_samples", "devices with samples but no requests", 1),
                  ("gpu-9", "requests", "requests whose devices report no samples", 5)], dq
    # gpu-7's devices and its FQDN-named requests joined: both devices served, the requests have energy
    got = con.execute("""select count(*), count(distinct node), min(energy_j) from marts.fct_request_energy
                         where replica_id = 'rep7'""").fetchone()
    assert got[0] == N_REQ - len(LOST) and got[1] == 1 and got[2] > 0
    c = con.execute("""select sum(server_requests), sum(telemetry_requests), sum(missing_requests),
                              sum(extra_requests), sum(server_prompt_tokens), sum(telemetry_prompt_tokens)
                       from intermediate.int_server_counter_completeness""").fetchone()
    assert c[:4] == (N_REQ, N_REQ - len(LOST), len(LOST), 0)
    assert c[4] - c[5] == sum(100 + i for i in LOST)
    con.close()
    assert "assert_server_counters_match_telemetry" in r.stderr and "assert_every_node_day_matches" in r.stderr
    page = (home / "site" / "quality.html").read_text()
    assert "Devices, requests and server counters that do not match" in page
    # the matching table is live (drawn in the browser for the selected chip and dates; the browser
    # test compares it with DuckDB): its data names each unmatched node with its counts
    live = json.loads(re.search(r'<script type="application/json" id="tw-live">(.*?)</script>', page, re.S)
                      .group(1).replace("<\\/", "</"))
    t = live["quality-matching-table"]["data"]
    rows = [{k: (v["values"][v["codes"][i]] if isinstance(v, dict) else v[i]) for k, v in t.items()}
            for i in range(len(t["date"]["codes"] if isinstance(t["date"], dict) else t["date"]))]
    by_node = {r["node"]: r for r in rows}
    assert by_node["gpu-8"]["idle_devices"] == 1 and by_node["gpu-8"]["requests_no_samples"] == 0
    assert by_node["gpu-9"]["requests_no_samples"] == 5
    assert by_node["gpu-7"]["server_not_telemetry"] == len(LOST)
