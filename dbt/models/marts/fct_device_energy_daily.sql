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
with device_days as (
    select * from {{ ref('int_device_day_costed') }}
    {% if is_incremental() %}
    where date between cast('{{ min_date }}' as date) and cast('{{ max_date }}' as date)
    {% endif %}
),

final as (
    select
        date, node, device_id, chip, vendor, replica_id,
        measured_energy_j,
        attributed_active_j,
        shared_idle_j,
        unused_j,
        attributed_active_j + shared_idle_j as attributed_j,
        measured_energy_j - (attributed_active_j + shared_idle_j + unused_j) as residual_j,
        request_side_active_j,
        request_side_idle_j,
        counter_intervals, integrated_intervals, gap_s, covered_s, counter_resets,
        idle_w, idle_source,
        measured_energy_j / nullif(covered_s, 0) as avg_power_w,
        measured_energy_kwh, energy_cost_usd, hardware_cost_usd, total_cost_usd, pue, site,
    from device_days
)

select * from final
