"""``tokenwatt serve metrics`` scraped by Debian's real ``prometheus`` on loopback (issue 15, points 1-2).

- the endpoint passes ``promtool check metrics`` and answers OpenMetrics when asked;
- Prometheus scrapes it and its HTTP API returns J/token per chip (re-aggregated in PromQL) and per
  chip and model equal to the mart's figures;
- a change to the warehouse file shows in the next scrape (refresh on file change);
- the Grafana dashboard JSON is a dashboard (schema version, panels, templated chip and model) and
  every PromQL expression in it names only metrics the endpoint serves (or dcgm-exporter's).

Needs /usr/bin/prometheus and /usr/bin/promtool (Debian's ``prometheus`` package); skipped when
they are missing, unless TOKENWATT_REQUIRE_PROMETHEUS=1.
"""
from __future__ import annotations

import json
import math
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import duckdb
import pytest

if str(Path(__file__).resolve().parents[1]) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

REPO = Path(__file__).resolve().parents[1]
PROMETHEUS, PROMTOOL = shutil.which("prometheus"), shutil.which("promtool")
if os.environ.get("TOKENWATT_REQUIRE_PROMETHEUS") == "1" and not (PROMETHEUS and PROMTOOL):
    raise RuntimeError("TOKENWATT_REQUIRE_PROMETHEUS=1 but prometheus/promtool is missing")
needs_prometheus = pytest.mark.skipif(not (PROMETHEUS and PROMTOOL), reason="needs Debian's prometheus and promtool")
#: dcgm-exporter's series the dashboard shows beside tokenwatt's
DCGM = {"DCGM_FI_DEV_POWER_USAGE"}
PROMQL_WORDS = {"sum", "avg", "min", "max", "count", "by", "without", "histogram_quantile", "time", "rate",
                "increase", "topk", "bottomk", "label_values", "on", "ignoring", "group_left", "group_right",
                "and", "or", "unless", "offset", "bool", "le"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, headers: dict | None = None) -> tuple[str, str]:
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=10) as r:
        return r.headers.get("Content-Type", ""), r.read().decode("utf-8")


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory):
    from dashboards.metrics import serve
    from tests.site_fixture import build_fixture

    d = tmp_path_factory.mktemp("metrics")
    db = build_fixture(d / "warehouse.duckdb", n_requests=3000, days=3)
    server, _thread = serve(db, "127.0.0.1", 0)
    yield {"db": db, "url": f"http://127.0.0.1:{server.server_port}/metrics", "port": server.server_port, "dir": d}
    server.shutdown()


def _mart_jpt(db: Path, by: str) -> dict:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return {tuple(r[:-1]): r[-1] for r in con.execute(
            f"select {by}, sum(energy_kwh) * 3.6e6 / sum(tokens) from marts.fct_cost_per_token_daily group by all"
        ).fetchall()}
    finally:
        con.close()


def _served_names(text: str) -> set[str]:
    return {m.group(1) for m in re.finditer(r"^# TYPE (\S+) ", text, re.M)}


@needs_prometheus
def test_promtool_and_openmetrics(endpoint):
    ctype, text = _get(endpoint["url"])
    r = subprocess.run([PROMTOOL, "check", "metrics"], input=text.encode(), capture_output=True, timeout=30)
    assert r.returncode == 0, r.stdout.decode() + r.stderr.decode()
    assert "tokenwatt_energy_per_token_joules{" in text
    assert not re.search(r"^tokenwatt_\w*timestamp_seconds 0(\.0)?$", text, re.M)  # no timestamp reads 0
    ctype, om = _get(endpoint["url"], {"Accept": "application/openmetrics-text; version=1.0.0"})
    assert ctype.startswith("application/openmetrics-text") and om.rstrip().endswith("# EOF")
    assert "# UNIT tokenwatt_energy_per_token_joules joules" in om


def start_prometheus(tmp_path: Path, job: str, target: str):
    """Debian's Prometheus on loopback scraping ``target`` every second; (process, query) where
    ``query(promql)`` returns the instant query's result list."""
    port = _free_port()
    cfg = tmp_path / "prometheus.yml"
    cfg.write_text("global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
                   f"scrape_configs:\n  - job_name: {job}\n    static_configs:\n"
                   f"      - targets: ['{target}']\n", encoding="utf-8")
    proc = subprocess.Popen([PROMETHEUS, f"--config.file={cfg}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                             f"--web.listen-address=127.0.0.1:{port}"],
                            stdout=subprocess.DEVNULL, stderr=open(tmp_path / "prometheus.log", "wb"))
    api = f"http://127.0.0.1:{port}/api/v1/query?query="

    def query(q: str) -> list:
        _, body = _get(api + urllib.parse.quote(q))
        return json.loads(body)["data"]["result"]

    return proc, query


def wait_for(query, promql: str, done, timeout_s: float = 60.0) -> list:
    """Query ``promql`` every 0.5 s until ``done(result)`` or the timeout; the last result."""
    deadline, res = time.monotonic() + timeout_s, []
    while time.monotonic() < deadline:
        try:
            res = query(promql)
        except OSError:
            res = []
        if done(res):
            break
        time.sleep(0.5)
    return res


@needs_prometheus
def test_prometheus_scrapes_j_per_token_equal_to_the_mart(endpoint, tmp_path):
    proc, query = start_prometheus(tmp_path, "tokenwatt", f"127.0.0.1:{endpoint['port']}")
    try:
        res = wait_for(query, "tokenwatt_energy_per_token_joules", bool)
        assert res, (tmp_path / "prometheus.log").read_text()[-2000:]
        mart = _mart_jpt(endpoint["db"], "chip, model")
        got = {(r["metric"]["chip"], r["metric"]["model"]): float(r["value"][1]) for r in res}
        assert got.keys() == mart.keys()
        for k, v in mart.items():
            assert math.isclose(got[k], v, rel_tol=1e-12), (k, got[k], v)
        per_chip = query("sum by (chip) (tokenwatt_energy_joules) / sum by (chip) (tokenwatt_tokens)")
        mart_chip = _mart_jpt(endpoint["db"], "chip")
        got_chip = {(r["metric"]["chip"],): float(r["value"][1]) for r in per_chip}
        assert got_chip.keys() == mart_chip.keys()
        for k, v in mart_chip.items():
            assert math.isclose(got_chip[k], v, rel_tol=1e-9), (k, got_chip[k], v)
        up = query('up{job="tokenwatt"}')
        assert [r["value"][1] for r in up] == ["1"]
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_a_changed_warehouse_shows_in_the_next_scrape(endpoint):
    _, before = _get(endpoint["url"])
    con = duckdb.connect(str(endpoint["db"]))
    try:
        con.execute("update marts.fct_cost_per_token_daily set energy_kwh = energy_kwh * 2 where chip = ?",
                    ["amd-mi300x"])
        con.execute("checkpoint")
    finally:
        con.close()
    _, after = _get(endpoint["url"])
    pat = re.compile(r'^tokenwatt_energy_per_token_joules\{chip="amd-mi300x",model="llama-8b",vendor="amd"\} (\S+)$',
                     re.M)
    b, a = float(pat.search(before).group(1)), float(pat.search(after).group(1))
    assert math.isclose(a, 2 * b, rel_tol=1e-9), (b, a)
    assert "tokenwatt_metrics_refresh_ok 1.0" in after


def test_grafana_dashboard_names_only_served_metrics(endpoint):
    dash = json.loads((REPO / "dashboards" / "grafana" / "tokenwatt.json").read_text(encoding="utf-8"))
    assert isinstance(dash["schemaVersion"], int) and dash["schemaVersion"] >= 30
    assert dash["title"] and dash["uid"]
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    assert {"chip", "model"} <= variables.keys()
    assert all(variables[v]["type"] == "query" and variables[v]["multi"] for v in ("chip", "model"))
    _, text = _get(endpoint["url"])
    served = _served_names(text)
    served |= {f"{n}_{s}" for n in served for s in ("bucket", "sum", "count")}
    exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    exprs += [v["definition"] for v in variables.values() if v.get("definition")]
    assert len(exprs) >= 8
    panels_with_sel = 0
    for e in exprs:
        bare = re.sub(r"label_values\(([^,)]*)(,[^)]*)?\)", r"\1", e)  # label_values(metric, label)
        bare = re.sub(r'"[^"]*"', "", bare)
        bare = re.sub(r"\{[^}]*\}", "", bare)
        bare = re.sub(r"\b(by|without)\s*\([^)]*\)", "", bare)
        names = {w for w in re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", bare) if w not in PROMQL_WORDS}
        assert names, e
        unknown = names - served - DCGM
        assert not unknown, (e, unknown)
        panels_with_sel += "$chip" in e
    assert panels_with_sel >= 6
