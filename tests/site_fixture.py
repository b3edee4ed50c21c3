"""A small synthetic warehouse with exactly the tables and columns of docs/marts.md.

Used by the dashboard-site tests (and handy for working on the site without running the
pipeline): ``python -m tests.site_fixture OUT.duckdb``.

The numbers are plausible, not simulated: three chips of the default fleet (nvidia-h100-sxm,
amd-mi300x, custom-asic), two models, six tasks, six languages, 28 days (``days=1`` gives the
warehouse of a first day: one point per daily series, and a forecast without intervals). Request
rows are drawn with numpy (deterministic for a given seed); the daily marts are aggregated from
them in DuckDB so that the tables agree with each other the way the dbt marts do.

``missing`` drops tables (e.g. ``{"attribution.quality"}``) and ``empty`` keeps a table's columns
but no rows, for the "no data yet" paths of the site.
"""
from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

CHIPS = {"nvidia-h100-sxm": "nvidia", "amd-mi300x": "amd", "custom-asic": "custom"}
MODELS = ("llama-8b", "llama-70b")
TASKS = {"chat": 0.36, "translate": 0.10, "summarize": 0.12, "code-generate": 0.20,
         "code-optimize": 0.10, "code-fix": 0.12}
# (prompt median, completion median) tokens, from collectors/catalog/tasks.yaml
TASK_TOKENS = {"chat": (250, 330), "translate": (450, 480), "summarize": (2200, 220),
               "code-generate": (800, 420), "code-optimize": (1800, 520), "code-fix": (1900, 160)}
LANGUAGES = {"en": 0.5, "fr": 0.16, "de": 0.09, "es": 0.10, "ja": 0.08, "zh": 0.07}
LANG_FACTOR = {"en": 1.0, "fr": 1.25, "de": 1.3, "es": 1.2, "ja": 1.5, "zh": 1.4}
TIERS = {"free": 0.45, "subscription": 0.40, "api": 0.15}
# the default fleet: node, chip, devices
NODES = [("h100-0", "nvidia-h100-sxm", 5), ("mi300x-0", "amd-mi300x", 3), ("asic-0", "custom-asic", 3)]
# replica: node, model, device indexes, share of that model's traffic
REPLICAS = [
    ("h100-0", "llama-70b", (0, 1, 2, 3), 0.55), ("h100-0", "llama-8b", (4,), 0.60),
    ("mi300x-0", "llama-70b", (0, 1), 0.25), ("mi300x-0", "llama-8b", (2,), 0.20),
    ("asic-0", "llama-70b", (0, 1), 0.20), ("asic-0", "llama-8b", (2,), 0.20),
]
NODE_CHIP = {n: c for n, c, _ in NODES}
# joules per (prompt token, completion token), per chip and model; assumption for the fixture
J_PER_TOKEN = {
    ("nvidia-h100-sxm", "llama-8b"): (0.02, 0.28), ("nvidia-h100-sxm", "llama-70b"): (0.12, 1.6),
    ("amd-mi300x", "llama-8b"): (0.024, 0.33), ("amd-mi300x", "llama-70b"): (0.14, 1.8),
    ("custom-asic", "llama-8b"): (0.012, 0.16), ("custom-asic", "llama-70b"): (0.07, 0.9),
}
# hardware USD per million tokens (busy time) and allocation uplift for idle capacity
HW_USD_PER_MTOK = {
    ("nvidia-h100-sxm", "llama-8b"): 0.25, ("nvidia-h100-sxm", "llama-70b"): 1.25,
    ("amd-mi300x", "llama-8b"): 0.22, ("amd-mi300x", "llama-70b"): 1.05,
    ("custom-asic", "llama-8b"): 0.16, ("custom-asic", "llama-70b"): 0.75,
}
ALLOC_UPLIFT = {"nvidia-h100-sxm": 1.35, "amd-mi300x": 1.6, "custom-asic": 1.45}
CHIP_POWER = {"nvidia-h100-sxm": (75 + 35, 700), "amd-mi300x": (140 + 20, 750), "custom-asic": (45 + 10, 450)}
USD_PER_KWH = 0.09
START = dt.datetime(2025, 5, 1, tzinfo=dt.timezone.utc)

TABLES = [
    "marts.fct_request_energy", "marts.fct_cost_per_token_daily", "marts.fct_device_energy_daily",
    "marts.fct_device_power_hourly", "marts.fct_pnl_daily", "marts.fct_loss_forecast",
    "marts.fct_data_quality_daily", "attribution.quality", "attribution.clock_skew", "raw.quarantine",
]
#: the tables (and columns) that hold node, device, replica and model names, for ``rename``
NAME_COLUMNS = {
    "marts.fct_request_energy": ("node", "replica_id", "model"),
    "marts.fct_cost_per_token_daily": ("model",),
    "marts.fct_device_power_hourly": ("node", "device_id"),
    "marts.fct_device_energy_daily": ("node", "device_id"),
    "marts.fct_data_quality_daily": ("node",),
    "attribution.clock_skew": ("node",),
    "raw.quarantine": ("file",),
}


def _choice(rng, mapping: dict, n: int) -> np.ndarray:
    keys = list(mapping)
    p = np.array([mapping[k] for k in keys], dtype=float)
    return np.array(keys, dtype=object)[rng.choice(len(keys), size=n, p=p / p.sum())]


def _requests(rng: np.random.Generator, n: int, days: int) -> pa.Table:
    # arrival: day with weekly growth and weekend dip, hour with a diurnal peak at 15:00 UTC
    day_w = np.array([(1.02 ** (d / 7)) * (0.8 if (START + dt.timedelta(days=d)).weekday() >= 5 else 1.0)
                      for d in range(days)])
    day = rng.choice(days, size=n, p=day_w / day_w.sum())
    hours = np.arange(24)
    hour_w = 1 + 0.35 * np.cos((hours - 15) / 24 * 2 * np.pi)
    hour = rng.choice(24, size=n, p=hour_w / hour_w.sum())
    sec = rng.uniform(0, 3600, size=n)
    t0 = np.datetime64(START.replace(tzinfo=None), "us")
    arrival = t0 + (day * 86400 + hour * 3600).astype("timedelta64[s]") + (sec * 1e6).astype("timedelta64[us]")

    model = np.where(rng.random(n) < 4.5 / 6.7, "llama-8b", "llama-70b").astype(object)
    replica_idx = np.empty(n, dtype=int)
    for m in MODELS:
        idx = [i for i, r in enumerate(REPLICAS) if r[1] == m]
        share = np.array([REPLICAS[i][3] for i in idx])
        sel = model == m
        replica_idx[sel] = np.array(idx)[rng.choice(len(idx), size=sel.sum(), p=share / share.sum())]
    node = np.array([REPLICAS[i][0] for i in replica_idx], dtype=object)
    chip = np.array([NODE_CHIP[x] for x in node], dtype=object)
    vendor = np.array([CHIPS[c] for c in chip], dtype=object)
    replica_id = np.array([f"{REPLICAS[i][0]}/{REPLICAS[i][1]}/{i}" for i in replica_idx], dtype=object)

    task = _choice(rng, TASKS, n)
    lang = _choice(rng, LANGUAGES, n)
    tier = _choice(rng, TIERS, n)
    pmed = np.array([TASK_TOKENS[t][0] for t in task]) * np.array([LANG_FACTOR[x] for x in lang])
    cmed = np.array([TASK_TOKENS[t][1] for t in task]) * np.array([LANG_FACTOR[x] for x in lang])
    prompt = np.clip(np.round(pmed * rng.lognormal(0, 0.8, n)), 4, 16000).astype(np.int64)
    completion = np.clip(np.round(cmed * rng.lognormal(0, 0.7, n)), 1, 4096).astype(np.int64)
    status = np.where(rng.random(n) < 0.002, "error", "ok").astype(object)
    completion[status == "error"] = 0
    total = prompt + completion

    is70 = model == "llama-70b"
    ttft = 0.04 + prompt * np.where(is70, 0.00025, 0.00006) * rng.lognormal(0, 0.3, n)
    latency = ttft + completion * np.where(is70, 0.028, 0.011) * rng.lognormal(0, 0.2, n)

    jp = np.array([J_PER_TOKEN[(c, m)][0] for c, m in zip(chip, model)])
    jc = np.array([J_PER_TOKEN[(c, m)][1] for c, m in zip(chip, model)])
    active_j = (prompt * jp + completion * jc) * rng.lognormal(0, 0.15, n) + 2.0
    idle_j = active_j * rng.uniform(0.15, 0.35, n)
    energy_j = active_j + idle_j
    energy_kwh = energy_j / 3.6e6
    energy_cost = energy_kwh * USD_PER_KWH
    hw_busy = total / 1e6 * np.array([HW_USD_PER_MTOK[(c, m)] for c, m in zip(chip, model)])
    uplift = np.array([ALLOC_UPLIFT[c] for c in chip])
    hardware_cost = hw_busy * uplift
    cost = energy_cost + hardware_cost
    usage_cost = active_j / 3.6e6 * USD_PER_KWH + hw_busy
    # revenue per million tokens: free pays nothing, subscriptions a flat-ish share, API list price
    price = {("api", "llama-8b"): 0.35, ("api", "llama-70b"): 1.9,
             ("subscription", "llama-8b"): 0.12, ("subscription", "llama-70b"): 0.55}
    rev_rate = np.array([price.get((t, m), 0.0) for t, m in zip(tier, model)])
    revenue = np.where(status == "ok", total / 1e6 * rev_rate, 0.0)
    # the mart's input (prefill) / output (decode) split: a share of the request's energy, applied to
    # its cost on both bases (marts/fct_request_energy.yml: input_cost_usd = cost_usd x input_share)
    input_share = (prompt * jp) / (prompt * jp + completion * jc)

    return pa.table({
        "request_id": pa.array([f"req-{i:09d}" for i in range(n)]),
        "replica_id": pa.array(replica_id, pa.string()),
        "node": pa.array(node, pa.string()),
        "chip": pa.array(chip, pa.string()),
        "vendor": pa.array(vendor, pa.string()),
        "model": pa.array(model, pa.string()),
        "task": pa.array(task, pa.string()),
        "language": pa.array(lang, pa.string()),
        "tier": pa.array(tier, pa.string()),
        "status": pa.array(status, pa.string()),
        "arrival_ts": pa.array(arrival, pa.timestamp("us", tz="UTC")),
        "prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": total,
        "ttft_s": ttft, "latency_s": latency,
        "active_energy_j": active_j, "idle_share_j": idle_j, "energy_j": energy_j, "energy_kwh": energy_kwh,
        "cost_usd": cost, "usage_cost_usd": usage_cost, "energy_cost_usd": energy_cost,
        "hardware_cost_usd": hardware_cost, "revenue_usd": revenue, "input_share": input_share,
        "input_cost_usd": cost * input_share, "output_cost_usd": cost * (1 - input_share),
        "input_usage_cost_usd": usage_cost * input_share, "output_usage_cost_usd": usage_cost * (1 - input_share),
    })


def _power_hourly(rng: np.random.Generator, days: int) -> pa.Table:
    rows: dict[str, list] = {k: [] for k in ("hour_ts", "node", "device_id", "chip", "vendor", "avg_power_w",
                                             "max_power_w", "avg_utilization_pct", "samples")}
    busy = {"nvidia-h100-sxm": 0.62, "amd-mi300x": 0.38, "custom-asic": 0.45}
    for node, chip, ndev in NODES:
        idle_w, rated_w = CHIP_POWER[chip]
        for d in range(ndev):
            dev = f"{node}/{d}"
            for h in range(days * 24):
                # a sensor outage: h100-0/4 loses 9 hours on day 12
                if dev == "h100-0/4" and 12 * 24 + 3 <= h < 12 * 24 + 12:
                    continue
                hod = h % 24
                diurnal = 1 + 0.35 * np.cos((hod - 15) / 24 * 2 * np.pi)
                util = float(np.clip(100 * busy[chip] * diurnal * rng.normal(1, 0.08), 0, 100))
                if chip == "custom-asic" and d == 2 and h // 24 == 20:
                    util = 0.0  # a drained device for a day
                p = idle_w + (rated_w - idle_w) * 0.85 * (util / 100) ** 0.9 + rng.normal(0, 6)
                rows["hour_ts"].append(START + dt.timedelta(hours=h))
                rows["node"].append(node)
                rows["device_id"].append(dev)
                rows["chip"].append(chip)
                rows["vendor"].append(CHIPS[chip])
                rows["avg_power_w"].append(max(p, idle_w * 0.9))
                rows["max_power_w"].append(min(rated_w, max(p, idle_w) * rng.uniform(1.1, 1.5)))
                rows["avg_utilization_pct"].append(util)
                rows["samples"].append(int(3600 - rng.integers(0, 5)))
    return pa.table(rows)


def build_fixture(path: Path, *, n_requests: int = 40_000, days: int = 28, seed: int = 7,
                  missing: set[str] | frozenset = frozenset(), empty: set[str] | frozenset = frozenset(),
                  rename: dict[str, str] | None = None) -> Path:
    """Write the synthetic warehouse to ``path`` (overwritten) and return it.

    ``rename`` maps the fixture's node and model names (``h100-0``, ``llama-8b``, ...) to others, e.g.
    hostile ones: every node, device, replica and model name (and the quarantined file names) that
    holds it is rewritten, with parameters, after the tables are built."""
    path = Path(path)
    if path.exists():
        path.unlink()
    rng = np.random.default_rng(seed)
    req = _requests(rng, n_requests, days)
    power = _power_hourly(rng, days)
    con = duckdb.connect(str(path))
    try:
        con.execute("set TimeZone = 'UTC'")
        for s in ("raw", "attribution", "marts"):
            con.execute(f"create schema if not exists {s}")
        con.register("req_arrow", req)
        con.execute("""
            create table marts.fct_request_energy as
            select request_id, replica_id, node, chip, vendor, model, task, language, tier, status,
                   arrival_ts, cast(arrival_ts as date) as date, prompt_tokens, completion_tokens,
                   total_tokens, ttft_s, latency_s, active_energy_j, idle_share_j, energy_j, energy_kwh,
                   cost_usd, usage_cost_usd, energy_cost_usd, hardware_cost_usd, revenue_usd, input_share,
                   input_cost_usd, output_cost_usd, input_usage_cost_usd, output_usage_cost_usd
            from req_arrow""")
        con.unregister("req_arrow")
        con.execute("""
            create table marts.fct_cost_per_token_daily as
            select date, chip, vendor, model, task, count(*) as requests,
                   sum(prompt_tokens) as prompt_tokens, sum(completion_tokens) as completion_tokens,
                   sum(total_tokens) as tokens, sum(energy_kwh) as energy_kwh,
                   sum(active_energy_j) / 3.6e6 as active_energy_kwh, sum(cost_usd) as cost_usd,
                   sum(usage_cost_usd) as usage_cost_usd,
                   sum(cost_usd) / nullif(sum(total_tokens), 0) * 1e6 as usd_per_mtok,
                   sum(usage_cost_usd) / nullif(sum(total_tokens), 0) * 1e6 as usage_usd_per_mtok,
                   sum(energy_j) / nullif(sum(total_tokens), 0) as j_per_token
            from marts.fct_request_energy group by all""")
        con.execute("""
            create table marts.fct_pnl_daily as
            with v as (
                select date, vendor, sum(revenue_usd) as revenue_usd, sum(energy_cost_usd) as energy_cost_usd,
                       sum(hardware_cost_usd) as hardware_cost_usd, sum(cost_usd) as total_cost_usd,
                       sum(total_tokens) as tokens
                from marts.fct_request_energy group by all
                union all
                select date, 'all', sum(revenue_usd), sum(energy_cost_usd), sum(hardware_cost_usd),
                       sum(cost_usd), sum(total_tokens)
                from marts.fct_request_energy group by all)
            select date, vendor, revenue_usd, energy_cost_usd, hardware_cost_usd, total_cost_usd,
                   total_cost_usd - revenue_usd as operating_loss_usd, tokens from v""")
        con.register("power_arrow", power)
        con.execute("""
            create table marts.fct_device_power_hourly as
            select cast(hour_ts as timestamptz) as hour_ts, node, device_id, chip, vendor, avg_power_w,
                   max_power_w, avg_utilization_pct, cast(samples as bigint) as samples
            from power_arrow""")
        con.unregister("power_arrow")
        con.execute("""
            create table marts.fct_device_energy_daily as
            with d as (
                select cast(hour_ts as date) as date, node, device_id, chip, vendor,
                       sum(avg_power_w * 3600) as measured_energy_j, avg(avg_power_w) as avg_power_w,
                       avg(avg_utilization_pct) as util, count(*) as hours
                from marts.fct_device_power_hourly group by all),
            idle as (select * from (values ('nvidia-h100-sxm', 110.0), ('amd-mi300x', 160.0),
                                            ('custom-asic', 55.0)) t(chip, idle_w))
            select d.date, d.node, d.device_id, d.chip, d.vendor, d.measured_energy_j,
                   (d.measured_energy_j - idle.idle_w * d.hours * 3600) * 0.97 as attributed_active_j,
                   idle.idle_w * d.hours * 3600 * d.util / 100 as shared_idle_j,
                   idle.idle_w * d.hours * 3600 * (1 - d.util / 100) as unused_j,
                   (d.measured_energy_j - idle.idle_w * d.hours * 3600) * 0.03 as residual_j,
                   cast(d.hours * 360 as bigint) as counter_intervals,
                   cast(case when d.chip = 'amd-mi300x' then 12 else 0 end as bigint) as integrated_intervals,
                   cast((24 - d.hours) * 3600 as double) as gap_s,
                   cast(case when d.chip = 'custom-asic' then floor(d.measured_energy_j / 4294967.296)
                             when d.device_id = 'mi300x-0/1' and d.date = date '2025-05-09' then 1
                             else 0 end as bigint) as counter_resets,
                   cast(idle.idle_w as double) as idle_w, case when d.chip = 'amd-mi300x' then 'learned' else 'catalog' end as idle_source,
                   d.avg_power_w
            from d join idle using (chip)""")
        # loss forecast: history from the P&L, then 56 days of forecast per scenario with widening bands
        hist = con.execute("select date, operating_loss_usd from marts.fct_pnl_daily where vendor = 'all' "
                           "order by date").fetchall()
        fc_rows = []
        last = float(np.mean([h[1] for h in hist[-7:]]))
        # with one day of history the pipeline's forecaster (warehouse/forecast.py) can fit no model: it
        # carries the last value forward with no intervals and no backtest; so does the fixture
        short = len(hist) < 2
        model = "last value (history too short for intervals)" if short else "AutoETS"
        for scen, growth, mape in (("baseline", 0.004, 8.2), ("traffic-2x", 0.018, 11.5),
                                   ("shift-to-asic", -0.006, 9.4)):
            mape = None if short else mape
            for d, loss in hist:
                fc_rows.append((scen, "day", d, "history", float(loss), None, None, None, None, mape, model))
            for k in range(1, 57):
                d = hist[-1][0] + dt.timedelta(days=k)
                mu = last * (1 + growth) ** k * (1 + 0.05 * np.sin(k / 7 * 2 * np.pi))
                sd = abs(last) * (0.04 + 0.012 * np.sqrt(k))
                b = (None,) * 4 if short else (mu - 1.2816 * sd, mu + 1.2816 * sd, mu - 1.96 * sd, mu + 1.96 * sd)
                fc_rows.append((scen, "day", d, "forecast", mu, *b, mape, model))
            for k in range(4):
                month = dt.date(2025, 5 + k, 1)
                kind = "history" if k == 0 else "forecast"
                mu = last * 30 * (1 + growth) ** (30 * k)
                sd = abs(mu) * 0.06 * k
                b = (None,) * 4 if kind == "history" or short else (mu - 1.2816 * sd, mu + 1.2816 * sd,
                                                                      mu - 1.96 * sd, mu + 1.96 * sd)
                fc_rows.append((scen, "month", month, kind, mu, *b, None if short else mape * 1.3, model))
        con.execute("""create table marts.fct_loss_forecast (scenario varchar, grain varchar, period_start date,
                       kind varchar, loss_usd double, lo80_usd double, hi80_usd double, lo95_usd double,
                       hi95_usd double, backtest_mape double, model varchar)""")
        con.executemany("insert into marts.fct_loss_forecast values (?,?,?,?,?,?,?,?,?,?,?)", fc_rows)

        reasons = {
            "device_samples": [("power_w", "negative power", 0.3), ("ts", "timestamp in the future", 0.05),
                               ("utilization_pct", "utilization outside 0-100", 0.2),
                               ("key", "duplicate of a row already loaded", 0.6)],
            "requests": [("completion_tokens", "negative token count", 0.1),
                         ("finish_ts", "finish before arrival", 0.15),
                         ("key", "duplicate within file", 0.4)],
        }
        q_rows, dq_rows = [], []
        for d in range(days):
            date = (START + dt.timedelta(days=d)).date()
            for kind, rs in reasons.items():
                for field, reason, lam in rs:
                    for node, _chip, _n in NODES:
                        k = int(rng.poisson(lam * (8 if d == 15 else 1)))
                        if k == 0:
                            continue
                        dq_rows.append((date, kind, node, reason, k))
                        for j in range(k):
                            f = f"{kind}/date={date}/node={node}/part-{j:04d}.parquet"
                            val = {"power_w": "-12.5", "utilization_pct": "104.0", "ts": "2031-01-01T00:00:00Z",
                                   "completion_tokens": "-3"}.get(field)
                            q_rows.append((kind, f, int(rng.integers(0, 5000)), field, reason, val,
                                           START + dt.timedelta(days=d, hours=1)))
        con.execute("create table marts.fct_data_quality_daily (date date, kind varchar, node varchar, "
                    "reason varchar, rows bigint)")
        con.executemany("insert into marts.fct_data_quality_daily values (?,?,?,?,?)", dq_rows)
        # sensor issues, as the dbt mart adds them: counter resets (count) and sampling gaps (seconds)
        con.execute("""
            insert into marts.fct_data_quality_daily
            select date, 'device_samples', node, 'counter reset (integrated power used)', sum(counter_resets)
            from marts.fct_device_energy_daily group by all having sum(counter_resets) > 0
            union all
            select date, 'device_samples', node, 'sampling gap (seconds)', round(sum(gap_s))
            from marts.fct_device_energy_daily group by all having sum(gap_s) > 0""")
        con.execute("create table raw.quarantine (kind varchar, file varchar, row bigint, field varchar, "
                    "reason varchar, value varchar, loaded_at timestamptz)")
        con.executemany("insert into raw.quarantine values (?,?,?,?,?,?,?)", q_rows)

        aq = []
        for method, base in (("power_weighted", 2.1), ("token_proportional", 6.5), ("time_sliced", 4.0)):
            for interval in (1, 5, 15, 60):
                med = base * (1 + 0.35 * np.log10(interval) * 2)
                aq.append((method, float(interval), med, med * 3.1, base * 0.4 * (1 + np.log10(interval)),
                           1e-6 * interval))
        con.execute("create table attribution.quality (method varchar, interval_s double, median_ape_pct double, "
                    "p95_ape_pct double, fleet_energy_error_pct double, conservation_residual_rel double)")
        con.executemany("insert into attribution.quality values (?,?,?,?,?,?)", aq)

        con.execute("create table attribution.clock_skew (date date, node varchar, skew_s double, "
                    "correlation double, correlation_at_zero double, devices bigint, applied boolean)")
        skew = [((START + dt.timedelta(days=d)).date(), node, s_, c, c0, n, ap)
                for d in range(min(days, 4))
                for node, s_, c, c0, n, ap in (("h100-0", 0.1, 0.91, 0.9, 5, False),
                                               ("mi300x-0", 2.5 + 0.1 * d, 0.88, 0.41, 3, True))]
        con.executemany("insert into attribution.clock_skew values (?,?,?,?,?,?,?)", skew)
        for old, new in (rename or {}).items():
            _rename(con, old, new)

        for t in empty:
            con.execute(f"delete from {t}")
        for t in missing:
            con.execute(f"drop table if exists {t}")
        con.execute("checkpoint")
    finally:
        con.close()
    return path


def _rename(con, old: str, new: str) -> None:
    """Replace the name ``old`` by ``new`` wherever it is a whole name or a path part of one
    (``h100-0/3``, ``h100-0/llama-8b/1``, ``node=h100-0/``)."""
    for table, cols in NAME_COLUMNS.items():
        for col in cols:
            con.execute(f"""update {table} set {col} = array_to_string(
                                list_transform(string_split({col}, '/'),
                                               lambda p: case when p = $old then $new
                                                         when p = 'node=' || $old then 'node=' || $new else p end),
                                '/')
                            where {col} is not null""", {"old": old, "new": new})


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--requests", type=int, default=40_000)
    ap.add_argument("--days", type=int, default=28)
    a = ap.parse_args(argv)
    build_fixture(a.out, n_requests=a.requests, days=a.days)
    print(a.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
