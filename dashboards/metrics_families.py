"""What ``tokenwatt serve metrics`` serves: the figures read from the warehouse's marts and the
metric families built from them (names and labels: :mod:`dashboards.metrics`)."""
from __future__ import annotations

from pathlib import Path

import duckdb
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily

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
