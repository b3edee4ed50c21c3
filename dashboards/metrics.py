"""``tokenwatt serve metrics``: tokenwatt's results as an OpenMetrics / Prometheus endpoint.

Serves, on loopback by default (``--addr 127.0.0.1 --port 9464``), gauges read from the warehouse's
marts (docs/marts.md), whole period in the warehouse:

- ``tokenwatt_energy_per_token_joules{chip,vendor,model}`` and the sums behind it,
  ``tokenwatt_tokens{chip,vendor,model,task}`` and ``tokenwatt_energy_joules{chip,vendor,model,task}``
  (so PromQL can re-aggregate: ``sum by (chip) (tokenwatt_energy_joules) / sum by (chip) (tokenwatt_tokens)``);
- ``tokenwatt_cost_per_million_tokens_usd{chip,vendor,model,basis="allocation"|"usage"}``;
- ``tokenwatt_request_energy_joules`` (a histogram per chip and model of successful requests);
- ``tokenwatt_unused_capacity_ratio{chip,vendor}`` and ``tokenwatt_conservation_residual_ratio{chip,vendor}``
  (unused and residual energy over measured device energy);
- ``tokenwatt_data_last_timestamp_seconds`` (newest request in the warehouse) and
  ``tokenwatt_warehouse_modified_timestamp_seconds``, only once there is such an event (never 0);
- ``tokenwatt_metrics_refresh_ok`` (1 when the last read of the warehouse worked).

The warehouse is opened read-only for the few queries of a refresh and closed again, so the pipeline
can take its write lock in between; a refresh happens on a scrape when the file changed (size or
mtime). A read that fails (the pipeline is writing) keeps the previous values and sets
``tokenwatt_metrics_refresh_ok`` to 0. No Dagster here.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path

import duckdb
from prometheus_client import start_http_server
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import CollectorRegistry

log = logging.getLogger("tokenwatt.metrics")

CPT = "marts.fct_cost_per_token_daily"
REQ = "marts.fct_request_energy"
DEV = "marts.fct_device_energy_daily"
#: upper bounds (J) of the request energy histogram
ENERGY_BUCKETS_J = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000]
#: the metric names this module serves (the Grafana dashboard test checks its queries against them)
METRICS = ("tokenwatt_energy_per_token_joules", "tokenwatt_tokens", "tokenwatt_energy_joules",
           "tokenwatt_cost_per_million_tokens_usd", "tokenwatt_request_energy_joules",
           "tokenwatt_unused_capacity_ratio", "tokenwatt_conservation_residual_ratio",
           "tokenwatt_data_last_timestamp_seconds", "tokenwatt_warehouse_modified_timestamp_seconds",
           "tokenwatt_metrics_refresh_ok")


def _tables(con) -> set[str]:
    return {f"{s}.{t}" for s, t in con.execute(
        "select table_schema, table_name from information_schema.tables").fetchall()}


def read_warehouse(db: Path) -> dict:
    """Every figure the endpoint serves, from one short read-only connection."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        con.execute("set TimeZone = 'UTC'")
        have = _tables(con)
        out: dict = {"tokens": [], "cost": [], "hist": [], "capacity": [], "last_ts": None}
        if CPT in have:
            out["tokens"] = con.execute(f"""select chip, vendor, model, task, sum(tokens), sum(energy_kwh) * 3.6e6,
                                                   sum(cost_usd), sum(usage_cost_usd)
                                            from {CPT} group by all having sum(tokens) > 0 order by all""").fetchall()
        if REQ in have:
            le = ", ".join(f"count(*) filter (where energy_j <= {b:g})" for b in ENERGY_BUCKETS_J)
            out["hist"] = [(c, v, m, list(rest[:-2]), rest[-2], rest[-1]) for c, v, m, *rest in con.execute(f"""
                select chip, vendor, model, {le}, count(*), sum(energy_j)
                from {REQ} where status = 'ok' group by chip, vendor, model order by all""").fetchall()]
            ts = con.execute(f"select epoch(max(arrival_ts)) from {REQ}").fetchone()[0]
            out["last_ts"] = float(ts) if ts is not None else None
        if DEV in have:
            out["capacity"] = con.execute(f"""select chip, min(vendor), sum(unused_j) / nullif(sum(measured_energy_j), 0),
                                                     sum(residual_j) / nullif(sum(measured_energy_j), 0)
                                              from {DEV} group by chip order by chip""").fetchall()
        return out
    finally:
        con.close()


def families(data: dict, modified: float | None, ok: bool) -> list:
    """The metric families of one refresh (pure: data in, families out)."""
    lab = ["chip", "vendor", "model"]
    jpt = GaugeMetricFamily("tokenwatt_energy_per_token_joules", "Energy per token (prompt + completion), "
                            "idle share included, whole period", labels=lab, unit="joules")
    tok = GaugeMetricFamily("tokenwatt_tokens", "Tokens served (prompt + completion), whole period",
                            labels=lab + ["task"])
    enj = GaugeMetricFamily("tokenwatt_energy_joules", "Energy attributed to requests, whole period",
                            labels=lab + ["task"], unit="joules")
    cpm = GaugeMetricFamily("tokenwatt_cost_per_million_tokens_usd", "Cost per million tokens, whole period",
                            labels=lab + ["basis"])
    by_cm: dict[tuple, list[float]] = {}
    for chip, vendor, model, task, tokens, energy_j, cost, ucost in data["tokens"]:
        tok.add_metric([chip, vendor, model, task], float(tokens))
        enj.add_metric([chip, vendor, model, task], float(energy_j))
        s = by_cm.setdefault((chip, vendor, model), [0.0, 0.0, 0.0, 0.0])
        for i, v in enumerate((tokens, energy_j, cost, ucost)):
            s[i] += float(v or 0)
    for (chip, vendor, model), (tokens, energy_j, cost, ucost) in by_cm.items():
        jpt.add_metric([chip, vendor, model], energy_j / tokens)
        cpm.add_metric([chip, vendor, model, "allocation"], cost / tokens * 1e6)
        cpm.add_metric([chip, vendor, model, "usage"], ucost / tokens * 1e6)
    hist = HistogramMetricFamily("tokenwatt_request_energy_joules", "Energy per successful request",
                                 labels=lab, unit="joules")
    for chip, vendor, model, counts, n, total in data["hist"]:
        buckets = [(f"{b:g}", float(c)) for b, c in zip(ENERGY_BUCKETS_J, counts)] + [("+Inf", float(n))]
        hist.add_metric([chip, vendor, model], buckets, float(total or 0))
    unused = GaugeMetricFamily("tokenwatt_unused_capacity_ratio", "Measured device energy no request used, "
                               "over measured device energy, whole period", labels=["chip", "vendor"], unit="ratio")
    resid = GaugeMetricFamily("tokenwatt_conservation_residual_ratio", "Energy the attribution could not place, "
                              "over measured device energy, whole period", labels=["chip", "vendor"], unit="ratio")
    for chip, vendor, u, r in data["capacity"]:
        if u is not None:
            unused.add_metric([chip, vendor], float(u))
        if r is not None:
            resid.add_metric([chip, vendor], float(r))
    out = [jpt, tok, enj, cpm, hist, unused, resid]
    if data["last_ts"] is not None:
        g = GaugeMetricFamily("tokenwatt_data_last_timestamp_seconds", "Arrival time of the newest request in the "
                              "warehouse", unit="seconds")
        g.add_metric([], data["last_ts"])
        out.append(g)
    if modified is not None:
        g = GaugeMetricFamily("tokenwatt_warehouse_modified_timestamp_seconds", "When the warehouse file last "
                              "changed", unit="seconds")
        g.add_metric([], modified)
        out.append(g)
    g = GaugeMetricFamily("tokenwatt_metrics_refresh_ok", "1 when the last read of the warehouse worked")
    g.add_metric([], 1.0 if ok else 0.0)
    out.append(g)
    return out


class WarehouseCollector:
    """A prometheus_client collector that re-reads the warehouse when its file changed."""

    def __init__(self, db: Path) -> None:
        self.db = Path(db)
        self._key: tuple | None = None
        self._data: dict = {"tokens": [], "cost": [], "hist": [], "capacity": [], "last_ts": None}
        self._ok = False
        self._lock = threading.Lock()

    def refresh(self) -> None:
        try:
            st = os.stat(self.db)
        except FileNotFoundError:
            self._ok = False
            return
        key = (st.st_mtime_ns, st.st_size)
        if key == self._key:
            return
        try:
            self._data = read_warehouse(self.db)
            self._key, self._ok = key, True
        except duckdb.Error as exc:  # the pipeline holds the write lock: keep the last values
            log.warning("warehouse %s not readable now: %s", self.db, str(exc).splitlines()[0])
            self._ok = False

    def collect(self):
        with self._lock:
            self.refresh()
            modified = self._key[0] / 1e9 if self._key else None
            return families(self._data, modified, self._ok)


def serve(db: Path, addr: str = "127.0.0.1", port: int = 9464):
    """Start the endpoint in a thread; returns (server, thread). ``/metrics`` answers in OpenMetrics
    when the scraper asks for it (Prometheus does), else in the Prometheus text format."""
    registry = CollectorRegistry()
    registry.register(WarehouseCollector(db))
    return start_http_server(port, addr=addr, registry=registry)


def add_serve_arguments(sub) -> None:
    p = sub.add_parser("serve", help="serve tokenwatt's results (serve metrics: an OpenMetrics endpoint)")
    what = p.add_subparsers(dest="what", required=True)
    m = what.add_parser("metrics", help="J/token, $/Mtok, unused capacity, ... for Prometheus, from the warehouse")
    m.add_argument("--home", default="data", help="tokenwatt home (its warehouse.duckdb)")
    m.add_argument("--db", type=Path, default=None, help="warehouse file (default: HOME/warehouse.duckdb)")
    m.add_argument("--addr", default="127.0.0.1", help="listen address (loopback by default)")
    m.add_argument("--port", type=int, default=9464)
    m.set_defaults(func=run_serve_metrics)


def run_serve_metrics(args) -> int:
    from collectors.home import Home

    db = args.db or Home(Path(args.home)).db
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    server, _thread = serve(db, args.addr, args.port)
    print(f"serving {db} on http://{args.addr}:{server.server_port}/metrics", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.shutdown()
    return 0
