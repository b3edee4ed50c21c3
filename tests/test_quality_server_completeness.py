"""Issue 13: server-counter completeness per replica and hour. Three vLLM servers on two nodes: chat-a and
chat-b share node gpu-5 and a model (their /metrics carry a ``tokenwatt_replica_id`` target label),
code-c's server on gpu-6 has no label (the replica map names the only replica there), and a fourth
server on gpu-5 with an unknown model maps to no replica. chat-b's request telemetry deliberately
under-reports output tokens on every 10th request. One real `tokenwatt run` (load, attribution, dbt,
site): the mart compares prompt and generation tokens separately per replica-hour, the tolerance comes
from dbt_project.yml, the data-quality check warns, and the Data quality page's table shows it."""
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
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [p for p in (str(ROOT), str(ROOT / "tests")) if p not in sys.path]

from collectors.exposition import parse_exposition  # noqa: E402
from collectors.prometheus import write_server_counters  # noqa: E402
from collectors.requestlog import RequestLogger  # noqa: E402
from collectors.schema import DEVICE_SAMPLES  # noqa: E402
from ingest_builders import DAY, T0, put, replicas  # noqa: E402

HOURS = 2
#: replica -> (node, device, model, server URL, label the server's series carry)
REPLICAS = {"chat-a": ("gpu-5", 0, "llama-3.1-8b", "http://gpu-5:8000/metrics", True),
            "chat-b": ("gpu-5", 1, "llama-3.1-8b", "http://gpu-5:8001/metrics", True),
            "code-c": ("gpu-6", 0, "qwen-2.5-7b", "http://gpu-6:8000/metrics", False)}
STRAY = ("gpu-5", "mistral-7b", "http://gpu-5:8002/metrics")  # a server no replica declares
UNDER = "chat-b"


def _served(replica: str) -> list[tuple[str, float, float, int, int]]:
    """(id, arrival, finish, prompt, completion) of every request a replica served: one a minute."""
    k = sorted(REPLICAS).index(replica)
    return [(f"{replica}-{i}", T0 + 30 + 60 * i + k, T0 + 34 + 60 * i + k, 200 + i % 7 + k, 30 + i % 5)
            for i in range(HOURS * 60 - 1)]


def _devices(spool: Path) -> None:
    rows = []
    for i in range(HOURS * 360):
        t = DAY + dt.timedelta(seconds=5 + 10 * i)
        text = ""
        for host, gpus in (("gpu-5", 2), ("gpu-6", 1)):
            for g in range(gpus):
                labels = f'gpu="{g}",UUID="GPU-{host}{g}",modelName="NVIDIA H100 80GB HBM3",Hostname="{host}"'
                text += (f"DCGM_FI_DEV_POWER_USAGE{{{labels}}} 300\n"
                         f"DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION{{{labels}}} {1e9 + 300_000 * 10 * i:.0f}\n")
        rows += parse_exposition(text, t, "scraper", "http://exporter/metrics").device_rows
    for node in ("gpu-5", "gpu-6"):
        put(spool, "device_samples", "dcgm", pa.Table.from_pylist([r for r in rows if r["node"] == node],
                                                                  schema=DEVICE_SAMPLES), node=node)


def _telemetry(spool: Path) -> dict[str, int]:
    """The request log of every replica; chat-b logs 10 output tokens instead of its count on every 10th
    request. Returns the output tokens chat-b's telemetry lost per UTC hour."""
    lost: dict[int, int] = {}
    for replica, (node, device, model, _, _) in REPLICAS.items():
        with RequestLogger(spool, node=node, background=False) as logger:
            for n, (rid, a, f, p, c) in enumerate(_served(replica)):
                logged = 10 if replica == UNDER and n % 10 == 0 else c
                lost[int((f - T0) // 3600)] = lost.get(int((f - T0) // 3600), 0) + (c - logged)
                assert logger.log(rid, model, a, f, p, logged, first_token_time=a + 0.5, replica_id=replica)
        put(spool, "replicas", replica, replicas(replica, node, (f"{node}/{device}",), model, t=T0), node=node)
    return lost


def _metrics(served, ts: float, model: str, label: str) -> str:
    done = [s for s in served if s[2] <= ts]
    return "".join(f'vllm:{name}_total{{model_name="{model}"{label}}} {value}\n' for name, value in (
        ("prompt_tokens", sum(s[3] for s in done)), ("generation_tokens", sum(s[4] for s in done)),
        ("request_success", len(done))))


def _server_counters(spool: Path) -> int:
    """Every server's /metrics scraped each 15 s, parsed by the scraper's own code. Returns the stray
    server's scrape intervals."""
    out = []
    stray = [(f"x{i}", 0, T0 + 100 + 300 * i, 50, 5) for i in range(HOURS * 12)]
    for k in range(1, HOURS * 240):
        ts = T0 + 15 * k
        when = dt.datetime.fromtimestamp(ts, dt.timezone.utc)
        for replica, (node, _, model, url, labelled) in REPLICAS.items():
            label = f',tokenwatt_replica_id="{replica}"' if labelled else ""
            out += parse_exposition(_metrics(_served(replica), ts, model, label), when, node, url).server_counters
        out += parse_exposition(_metrics(stray, ts, STRAY[1], ""), when, STRAY[0], STRAY[2]).server_counters
    write_server_counters(spool, out, "vllm-scrape")
    return HOURS * 240 - 2


@pytest.mark.slow
def test_an_under_reported_replica_is_found_per_replica_and_hour(tmp_path):
    home = tmp_path / "home"
    spool = home / "spool"
    _devices(spool)
    lost = _telemetry(spool)
    stray_scrapes = _server_counters(spool)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TOKENWATT_FRESHNESS_REFERENCE": "data"}
    r = subprocess.run([sys.executable, "-m", "pipelines.cli", "run", "--home", str(home)], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=1200)
    assert "Traceback" not in r.stderr, r.stderr[-4000:]
    tolerance = yaml.safe_load((ROOT / "dbt" / "dbt_project.yml").read_text())["vars"]
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    got = con.execute("""select replica_id, hour(hour_ts), node, server_requests, telemetry_requests,
                                server_prompt_tokens, telemetry_prompt_tokens, prompt_gap_tokens,
                                server_generation_tokens, telemetry_completion_tokens, generation_gap_tokens,
                                generation_gap_pct, prompt_within_tolerance, generation_within_tolerance,
                                prompt_tolerance_pct, generation_tolerance_pct
                         from marts.fct_server_token_completeness order by replica_id nulls last, hour_ts""").fetchall()
    by = {(g[0], g[1]): g for g in got}
    assert sorted(k for k in by if k[0]) == [(rep, h) for rep in sorted(REPLICAS) for h in range(HOURS)]
    for (replica, hour), g in by.items():
        if replica is None:
            continue
        served = [s for s in _served(replica) if T0 + 15 < s[2] and int((s[2] - T0) // 3600) == hour]
        assert g[2] == REPLICAS[replica][0]
        assert g[3] == g[4] == len(served), g  # every request the server counted is in the telemetry
        assert g[5] == g[6] == sum(s[3] for s in served) and g[7] == 0  # prompt tokens: no gap anywhere
        assert g[8] == sum(s[4] for s in served)  # the server's own output-token count
        assert g[10] == (lost[hour] if replica == UNDER else 0), g  # the gap is what chat-b's telemetry lost
        assert (g[14], g[15]) == (tolerance["server_prompt_token_tolerance_pct"],
                                  tolerance["server_generation_token_tolerance_pct"])
        assert g[12] is True and g[13] is (replica != UNDER), g  # prompt and generation judged apart
        if replica == UNDER:
            assert g[11] > g[15]
    # the stray server on gpu-5 (two replicas, neither its model) maps to no replica
    unmapped = [g for g in got if g[0] is None]
    assert [(g[1], g[2], g[12], g[13]) for g in unmapped] == [(h, "gpu-5", False, False) for h in range(HOURS)]
    dq = con.execute("""select node, reason, rows from marts.fct_data_quality_daily
                        where kind = 'server_counters' order by node, reason""").fetchall()
    assert dq == [("gpu-5", "replica-hours whose tokens differ from the server counters beyond tolerance", HOURS),
                  ("gpu-5", "server counter scrapes that map to no replica", stray_scrapes)], dq
    con.close()
    warned = re.search(r"Warning in test assert_server_counters_match_telemetry.*?Got (\d+) results", r.stdout + r.stderr,
                       re.S)
    assert warned and int(warned.group(1)) == 2 * HOURS, (r.stdout + r.stderr)[-3000:]  # chat-b's and the stray's hours
    page = (home / "site" / "quality.html").read_text()
    assert "Server counters against request telemetry, per replica" in page
    # the table is live (drawn in the browser for the selected chip, model and dates): its per-day data
    # adds up to each replica's hours beyond tolerance and hours compared
    live = json.loads(re.search(r'<script type="application/json" id="tw-live">(.*?)</script>', page, re.S)
                      .group(1).replace("<\\/", "</"))
    t = live["quality-server-completeness-table"]["data"]
    n = len(t["date"]["codes"] if isinstance(t["date"], dict) else t["date"])
    recs = [{k: (v["values"][v["codes"][i]] if isinstance(v, dict) else v[i]) for k, v in t.items()} for i in range(n)]
    rows: dict[str, str] = {}
    for rep in {r["replica"] for r in recs}:
        mine = [r for r in recs if r["replica"] == rep]
        rows[rep] = f"{sum(r['beyond'] for r in mine)} / {sum(r['hours'] for r in mine)}"
    assert rows == {"chat-b": f"{HOURS} / {HOURS}", "(none)": f"{HOURS} / {HOURS}",
                    "chat-a": f"0 / {HOURS}", "code-c": f"0 / {HOURS}"}, rows
