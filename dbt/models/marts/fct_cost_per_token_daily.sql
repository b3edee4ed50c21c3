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
with requests as (
    select * from {{ ref('fct_request_energy') }}
    {% if is_incremental() %}
    where date between cast('{{ min_date }}' as date) and cast('{{ max_date }}' as date)
    {% endif %}
),

final as (
    select
        date, chip, vendor, model, task,
        count(*) as requests,
        sum(prompt_tokens) as prompt_tokens,
        sum(completion_tokens) as completion_tokens,
        sum(total_tokens) as tokens,
        sum(energy_j) / 3.6e6 as energy_kwh,
        sum(active_energy_j) / 3.6e6 as active_energy_kwh,
        sum(cost_usd) as cost_usd,
        sum(usage_cost_usd) as usage_cost_usd,
        sum(revenue_usd) as revenue_usd,
        sum(cost_usd) / nullif(sum(total_tokens), 0) * 1e6 as usd_per_mtok,
        sum(usage_cost_usd) / nullif(sum(total_tokens), 0) * 1e6 as usage_usd_per_mtok,
        sum(energy_j) / nullif(sum(total_tokens), 0) as j_per_token,
        sum(energy_j) / nullif(sum(completion_tokens), 0) as j_per_output_token,
    from requests
    group by all
)

select * from final
