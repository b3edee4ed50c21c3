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
from prometheus_client.registry import CollectorRegistry

from dashboards.metrics_families import METRICS, families, read_warehouse

log = logging.getLogger("tokenwatt.metrics")

__all__ = ["METRICS", "WarehouseCollector", "serve", "add_serve_arguments", "run_serve_metrics"]


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
