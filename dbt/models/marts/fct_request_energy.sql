{#- Incremental by UTC day: a partitioned run (dbt --vars '{min_date: ..., max_date: ...}', built by
    warehouse.ingest_state.dbt_window_vars) deletes the window's days and inserts them again; a
    run without the vars, or with --full-refresh, rebuilds the whole table. -#}
{%- set min_date = var('min_date', '1900-01-01') -%}
{%- set max_date = var('max_date', '2999-12-31') -%}
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    on_schema_change='sync_all_columns',
    pre_hook="{% if is_incremental() %}delete from {{ this }} where date between cast('" ~ min_date ~ "' as date) and cast('" ~ max_date ~ "' as date){% endif %}"
) }}
select
    request_id, replica_id, node, chip, vendor, model, task, language, tier, status,
    arrival_ts, date, prompt_tokens, completion_tokens, total_tokens, ttft_s, latency_s,
    active_energy_j, idle_share_j, energy_j, energy_kwh,
    coalesce(cost_usd, 0) as cost_usd,
    coalesce(usage_cost_usd, 0) as usage_cost_usd,
    coalesce(energy_cost_usd, 0) as energy_cost_usd,
    coalesce(hardware_cost_usd, 0) as hardware_cost_usd,
    coalesce(revenue_usd, 0) as revenue_usd,
from {{ ref('int_requests_costed') }}
{% if is_incremental() %}
where date between cast('{{ min_date }}' as date) and cast('{{ max_date }}' as date)
{% endif %}
