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


def _add_footprint_power_completeness(db: Path) -> None:
    """The site fixture has no footprint, power-model or server-counter marts: small ones derived from
    its request and device marts, with the columns the footprint, energy and quality pages' live tables
    read (figures vary by chip, model and day so that a selection changes them)."""
    con = duckdb.connect(str(db))
    try:
        con.execute("""create table marts.fct_footprint_daily as
            with r as (select date, 'site-' || vendor as site, chip, model, task, language, count(*) as requests,
                              sum(total_tokens) as total_tokens, sum(energy_j) as accelerator_j,
                              sum(energy_j) * 0.3 as host_j, sum(energy_j) as e_j,
                              case chip when 'amd-mi300x' then 0.2 else 0.12 end as pue_extra,
                              case chip when 'amd-mi300x' then 0.41 when 'custom-asic' then 0.2 else 0.3 end as g_per_wh
                       from marts.fct_request_energy group by all),
            r2 as (select *, e_j * (0.05 + 0.01 * dayofmonth(date)) as reserve_j from r)
            select date, site, chip, model, task, language, requests, total_tokens, accelerator_j, host_j, reserve_j,
                   (accelerator_j + host_j + reserve_j) * pue_extra as facility_j,
                   (accelerator_j + host_j + reserve_j) * (1 + pue_extra) as full_j,
                   (accelerator_j + host_j + reserve_j) * (1 + pue_extra) / 3600 as full_wh,
                   accelerator_j / 3600 as accelerator_wh,
                   (accelerator_j + host_j + reserve_j) * (1 + pue_extra) / 3600 * g_per_wh as full_location_gco2e,
                   (accelerator_j + host_j + reserve_j) * (1 + pue_extra) / 3600 * g_per_wh * 0.6 as full_market_gco2e,
                   (accelerator_j + host_j + reserve_j) * (1 + pue_extra) / 3600 * 1.1 as full_water_ml,
                   accelerator_j / 3600 * g_per_wh as accelerator_location_gco2e,
                   accelerator_j / 3600 * g_per_wh * 0.6 as accelerator_market_gco2e,
                   accelerator_j / 3600 * 1.1 as accelerator_water_ml
            from r2""")
        con.execute("""create table marts.fct_power_model as
            select e.date, e.device_id, e.node, e.chip,
                   case when right(e.device_id, 1) in ('0', '2', '4') then 'llama-8b' else 'llama-70b' end as model,
                   f.feature, hash(e.device_id, e.date) % 5 <> 0 as learned,
                   e.avg_power_w * f.k + dayofmonth(e.date) as active_power_w,
                   case when f.feature = 'prefill' then 1.1 + (hash(e.device_id, e.date) % 7) / 10.0 end
                       as prefill_decode_ratio,
                   case when f.feature = 'prefill' then 0.8 + (hash(e.date, e.device_id) % 19) / 100.0 end as r2,
                   case when hash(e.device_id, e.date) % 5 = 0 then 'too few intervals' end as fallback_reason,
                   f.batch_lo, f.batch_lo is not null as observed,
                   (e.avg_power_w * f.k + dayofmonth(e.date)) / f.batch_lo as active_power_per_request_w
            from marts.fct_device_energy_daily e,
                 (values ('prefill', 1.4, null), ('decode_1', 0.6, 1), ('decode_2', 0.8, 8)) f(feature, k, batch_lo)""")
        con.execute("""create table marts.fct_server_token_completeness as
            with h as (select date, date_trunc('hour', arrival_ts) as hour_ts, replica_id, node, model,
                              sum(prompt_tokens) as tp, sum(completion_tokens) as tg
                       from marts.fct_request_energy group by all),
            s as (select *, tp + case when hash(replica_id, hour_ts) % 6 = 0 then tp // 20 else 0 end as sp,
                         tg + case when hash(hour_ts, replica_id) % 4 = 0 then tg // 10 else 0 end as sg from h
                  union all  -- a server on the mi300x node that maps to no replica, one hour a day
                  select date, min(hour_ts), null, node, null, 0, 0, 100 + dayofmonth(date), 0
                  from h where replica_id = (select min(replica_id) from h where node = (
                      select min(node) from marts.fct_request_energy where chip = 'amd-mi300x')) group by all)
            select date, hour_ts, replica_id, node, model, sp as server_prompt_tokens, tp as telemetry_prompt_tokens,
                   sg as server_generation_tokens, tg as telemetry_completion_tokens,
                   1.0 as prompt_tolerance_pct, 1.0 as generation_tolerance_pct,
                   replica_id is not null and abs(sp - tp) <= 0.01 * sp as prompt_within_tolerance,
                   replica_id is not null and abs(sg - tg) <= 0.01 * sg as generation_within_tolerance
            from s""")
    finally:
        con.close()


def _expect_footprint(db: Path) -> dict[tuple, dict]:
    """The footprint page's breakdown table for the selection, from marts.fct_footprint_daily."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = con.execute("""
            select chip, model, sum(accelerator_wh) / sum(requests), sum(full_wh) / sum(requests),
                   sum(accelerator_market_gco2e) / sum(requests), sum(full_market_gco2e) / sum(requests),
                   sum(full_location_gco2e) / sum(requests), sum(accelerator_water_ml) / sum(requests),
                   sum(full_water_ml) / sum(requests), sum(full_wh) / sum(total_tokens) * 1000
            from marts.fct_footprint_daily where chip = ? and date between ? and ? group by all""",
                           [CHIP, FROM, TO]).fetchall()
    finally:
        con.close()
    keys = ("acc_wh_per_request", "full_wh_per_request", "acc_g_mkt_per_request", "g_mkt_per_request",
            "g_loc_per_request", "acc_ml_per_request", "ml_per_request", "full_wh_per_1k_tokens")
    return {r[:2]: dict(zip(keys, r[2:], strict=True)) for r in rows}


def _expect_power_model(db: Path) -> dict[tuple, dict]:
    """The energy page's learned-power-model table for the selection, from marts.fct_power_model."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = con.execute("""
            with p as (select * from marts.fct_power_model where chip = ? and date between ? and ?),
            d as (select chip, model, date, count(distinct device_id) as n from p group by all),
            r as (select chip, model, string_agg(distinct fallback_reason, '; ' order by fallback_reason) as reasons
                  from marts.fct_power_model group by all)
            select p.chip, p.model, (select max(n) from d where d.chip = p.chip and d.model = p.model),
                   count(distinct (device_id, date)) filter (where learned), count(distinct (device_id, date)),
                   avg(active_power_w) filter (where learned and feature = 'prefill'),
                   avg(prefill_decode_ratio) filter (where learned and feature = 'prefill'),
                   avg(r2) filter (where feature = 'prefill'), coalesce(any_value(r.reasons), '–')
            from p join r using (chip, model) group by all""", [CHIP, FROM, TO]).fetchall()
    finally:
        con.close()
    return {r[:2]: {"devices": r[2], "learned_days": r[3], "device_days": r[4], "prefill_w": r[5], "ratio": r[6],
                    "r2": r[7], "reasons": r[8]} for r in rows}


def _expect_completeness(db: Path) -> dict[tuple, dict]:
    """The quality page's server-counter table for the selection (the chip of the replica's node), from
    marts.fct_server_token_completeness."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = con.execute("""
            with nc as (select node, min(chip) as chip from marts.fct_device_energy_daily group by node
                        having count(distinct chip) = 1)
            select coalesce(replica_id, '(none)'), m.node, sum(server_prompt_tokens), sum(telemetry_prompt_tokens),
                   (sum(server_prompt_tokens) - sum(telemetry_prompt_tokens)) * 100.0
                       / nullif(sum(server_prompt_tokens), 0),
                   sum(server_generation_tokens), sum(telemetry_completion_tokens),
                   (sum(server_generation_tokens) - sum(telemetry_completion_tokens)) * 100.0
                       / nullif(sum(server_generation_tokens), 0),
                   count(*) filter (where not (prompt_within_tolerance and generation_within_tolerance)), count(*)
            from marts.fct_server_token_completeness m join nc using (node)
            where nc.chip = ? and date between ? and ? group by all""", [CHIP, FROM, TO]).fetchall()
    finally:
        con.close()
    keys = ("sp", "tp", "prompt_gap_pct", "sg", "tg", "generation_gap_pct", "beyond", "hours")
    return {r[:2]: dict(zip(keys, r[2:], strict=True)) for r in rows}
