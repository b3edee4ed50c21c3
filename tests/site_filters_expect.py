"""DuckDB's figures for the selection tests/test_site_filters.py makes in the browser (chip CHIP, dates
FROM..TO): what each live card and table must show, queried straight from the marts."""
from __future__ import annotations

from pathlib import Path

import duckdb

CHIP, VENDOR, FROM, TO = "amd-mi300x", "amd", "2025-05-03", "2025-05-05"


def _expect_overview(db: Path) -> tuple[dict, dict]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        c = con.execute("""
            select sum(requests), sum(tokens), sum(energy_kwh), sum(cost_usd), sum(usage_cost_usd)
            from marts.fct_cost_per_token_daily where chip = ? and date between ? and ?""",
                        [CHIP, FROM, TO]).fetchone()
        rev = con.execute("select sum(revenue_usd) from marts.fct_request_energy where chip = ? and date between ? and ?",
                          [CHIP, FROM, TO]).fetchone()[0]
        v = con.execute("""select sum(tokens), sum(revenue_usd), sum(total_cost_usd) from marts.fct_pnl_daily
                           where vendor = ? and date between ? and ?""", [VENDOR, FROM, TO]).fetchone()
    finally:
        con.close()
    req, tok, kwh, cost, ucost = c
    cards = {"tokens": tok, "requests": req, "energy_kwh": kwh, "j_per_token": kwh * 3.6e6 / tok,
             "usd_per_mtok": cost / tok * 1e6, "usage_usd_per_mtok": ucost / tok * 1e6, "revenue_usd": rev,
             "operating_loss_usd": cost - rev, "cost_usd": cost, "usage_cost_usd": ucost}
    vendor = {"tokens": v[0], "revenue_usd": v[1], "total_cost_usd": v[2], "operating_loss_usd": v[2] - v[1]}
    return cards, vendor


def _expect_workloads(db: Path) -> dict[tuple, dict]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = con.execute("""
            select chip, model, task, tier, count(*), sum(total_tokens), sum(cost_usd) / sum(total_tokens) * 1e6,
                   sum(usage_cost_usd) / sum(total_tokens) * 1e6, sum(energy_kwh) * 3.6e6 / sum(total_tokens),
                   sum(input_cost_usd) / sum(prompt_tokens) * 1e6,
                   sum(output_cost_usd) / nullif(sum(completion_tokens), 0) * 1e6,
                   sum(input_usage_cost_usd) / sum(prompt_tokens) * 1e6,
                   sum(output_usage_cost_usd) / nullif(sum(completion_tokens), 0) * 1e6
            from marts.fct_request_energy where chip = ? and date between ? and ? group by all""",
                           [CHIP, FROM, TO]).fetchall()
    finally:
        con.close()
    return {r[:4]: {"requests": r[4], "tokens": r[5], "usd_per_mtok": r[6], "usage_usd_per_mtok": r[7],
                    "j_per_token": r[8], "input_usd_per_mtok": r[9], "output_usd_per_mtok": r[10],
                    "input_usage_usd_per_mtok": r[11], "output_usage_usd_per_mtok": r[12]} for r in rows}


def _expect_idle(db: Path) -> dict[tuple, dict]:
    """The energy page's idle-power table for the selection, from marts.fct_device_energy_daily."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = con.execute("""
            with d as (select date, chip, idle_source, count(distinct device_id) as devices from
                       marts.fct_device_energy_daily where chip = ? and date between ? and ? group by all)
            select chip, idle_source, (select max(devices) from d where d.chip = e.chip
                                       and d.idle_source = e.idle_source),
                   count(*), avg(idle_w), avg(avg_power_w)
            from marts.fct_device_energy_daily e where chip = ? and date between ? and ? group by all""",
                           [CHIP, FROM, TO, CHIP, FROM, TO]).fetchall()
    finally:
        con.close()
    return {r[:2]: {"devices": r[2], "device_days": r[3], "idle_w": r[4], "avg_power_w": r[5]} for r in rows}


def _expect_devices(db: Path) -> dict[str, dict]:
    """The fleet page's per-device table for the selection, from marts.fct_device_power_hourly."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = con.execute("""
            select device_id, min(chip), avg(avg_power_w), max(max_power_w), avg(avg_utilization_pct), count(*)
            from marts.fct_device_power_hourly where chip = ? and cast(hour_ts as date) between ? and ?
            group by device_id""", [CHIP, FROM, TO]).fetchall()
    finally:
        con.close()
    return {r[0]: {"chip": r[1], "avg_w": r[2], "max_w": r[3], "util": r[4], "hours": r[5]} for r in rows}


def _add_token_economics(db: Path) -> None:
    """The site fixture has no marts.fct_token_economics: the per-day sums the cost page's input/output
    table reads, grouped from the fixture's request mart as dbt/models/marts/fct_token_economics.sql does."""
    con = duckdb.connect(str(db))
    try:
        con.execute("""create table marts.fct_token_economics as
            select date, chip, vendor, model, task, tier, count(*) as requests, sum(prompt_tokens) as input_tokens,
                   sum(completion_tokens) as output_tokens, sum(total_tokens) as tokens, sum(cost_usd) as cost_usd,
                   sum(input_cost_usd) as input_cost_usd, sum(output_cost_usd) as output_cost_usd,
                   sum(usage_cost_usd) as usage_cost_usd, sum(input_usage_cost_usd) as input_usage_cost_usd,
                   sum(output_usage_cost_usd) as output_usage_cost_usd, sum(revenue_usd) as revenue_usd,
                   sum(revenue_usd) - sum(cost_usd) as margin_usd
            from marts.fct_request_energy group by all""")
    finally:
        con.close()


def _expect_split(db: Path) -> dict[tuple, dict]:
    """The cost page's input/output table for the selection, from marts.fct_request_energy."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = con.execute("""
            select chip, model, sum(input_cost_usd) / sum(prompt_tokens) * 1e6,
                   sum(output_cost_usd) / sum(completion_tokens) * 1e6, sum(cost_usd) / sum(total_tokens) * 1e6,
                   sum(completion_tokens) * 100.0 / sum(prompt_tokens)
            from marts.fct_request_energy where chip = ? and date between ? and ? group by all""",
                           [CHIP, FROM, TO]).fetchall()
    finally:
        con.close()
    return {r[:2]: {"input_usd_per_mtok": r[2], "output_usd_per_mtok": r[3], "usd_per_mtok": r[4],
                    "output_per_100_input": r[5]} for r in rows}


def _expect_resets(db: Path) -> dict[tuple, dict]:
    """The quality page's counter-reset table for the selection, from marts.fct_device_energy_daily."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = con.execute("""
            with d as (select date, count(distinct device_id) as n from marts.fct_device_energy_daily
                       where chip = ? and date between ? and ? group by date)
            select chip, (select max(n) from d), sum(counter_resets), sum(counter_intervals),
                   sum(integrated_intervals),
                   sum(integrated_intervals) * 100.0 / (sum(counter_intervals) + sum(integrated_intervals))
            from marts.fct_device_energy_daily where chip = ? and date between ? and ? group by chip""",
                           [CHIP, FROM, TO, CHIP, FROM, TO]).fetchall()
    finally:
        con.close()
    return {(r[0],): {"devices": r[1], "resets": r[2], "counter_iv": r[3], "integrated_iv": r[4],
                      "integrated_pct": r[5]} for r in rows}


def _expect_skew(db: Path) -> dict[tuple, dict]:
    """The quality page's clock-skew table for the selected dates (nodes carry no chip)."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = con.execute("""select strftime(date, '%Y-%m-%d'), node, skew_s, correlation, correlation_at_zero,
                                     devices from attribution.clock_skew where date between ? and ?""",
                           [FROM, TO]).fetchall()
    finally:
        con.close()
    return {r[:2]: {"skew_s": r[2], "correlation": r[3], "correlation_at_zero": r[4], "devices": r[5]} for r in rows}
