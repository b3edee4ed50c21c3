{#- Incremental by UTC day. A partitioned run passes the window as
    dbt --vars '{min_date: ..., max_date: ...}' (built by warehouse.ingest_state.dbt_window_vars):
    the model deletes the window's days and inserts them again. A run without the vars, or with
    --full-refresh, rebuilds the whole table. -#}

{% macro day_window_between() -%}
between cast('{{ var("min_date", "1900-01-01") }}' as date) and cast('{{ var("max_date", "2999-12-31") }}' as date)
{%- endmacro %}

{% macro day_window_config(day_expr='date') -%}
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    on_schema_change='sync_all_columns',
    pre_hook="{% if is_incremental() %}delete from {{ this }} where " ~ day_expr ~ " " ~ day_window_between() ~ "{% endif %}"
) }}
{%- endmacro %}
