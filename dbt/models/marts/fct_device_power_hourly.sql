{#- Incremental by UTC day: a partitioned run (dbt --vars '{min_date: ..., max_date: ...}', built by
    warehouse.ingest_state.dbt_window_vars) deletes the window's days and inserts them again; a
    run without the vars, or with --full-refresh, rebuilds the whole table. -#}
{%- set min_date = var('min_date', '1900-01-01') -%}
{%- set max_date = var('max_date', '2999-12-31') -%}
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    on_schema_change='sync_all_columns',
    pre_hook="{% if is_incremental() %}delete from {{ this }} where cast(hour_ts as date) between cast('" ~ min_date ~ "' as date) and cast('" ~ max_date ~ "' as date){% endif %}"
) }}
select
    hour_ts, node, device_id, chip, vendor,
    avg(power_w) as avg_power_w,
    max(power_w) as max_power_w,
    avg(utilization_pct) as avg_utilization_pct,
    avg(temperature_c) as avg_temperature_c,
    count(*) as samples,
from {{ ref('stg_raw__device_samples') }}
{% if is_incremental() %}
where date between cast('{{ min_date }}' as date) and cast('{{ max_date }}' as date)
{% endif %}
group by all
