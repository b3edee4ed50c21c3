{#- Incremental by UTC day. The run's window of days comes from the warehouse, not from dbt's command
    line: the pipeline (pipelines/dbt.py) writes it into run.dbt_window (one row: min_date, max_date)
    before `dbt build` and empties it afterwards, so the command line is the same for every window and
    dbt's partial parsing carries over (changing --vars makes dbt re-parse the whole project). An
    empty or missing table means every day (1900..2999).
    By hand, dbt --vars '{min_date: ..., max_date: ...}' still overrides it.
    The model deletes the window's days and inserts them again; --full-refresh rebuilds the table. -#}

{#- One bound of the window, as a date literal (so DuckDB prunes the scans on it): --vars first, else
    run.dbt_window read when the node runs (`execute`), else (parsing, or no such table) every day.
    Only ever call it where it is rendered when the node runs (model SQL, or inside a hook's string):
    a config value built at parse time would carry the parse-time default, every day. -#}
{% macro day_window_bound(which, default) -%}
{%- set value = var(which, none) -%}
{%- if value is none and execute -%}
    {%- set rel = adapter.get_relation(database=target.database, schema='run', identifier='dbt_window') -%}
    {%- if rel is not none -%}
        {%- set value = run_query("select cast(" ~ which[:3] ~ "(" ~ which ~ ") as varchar) from " ~ rel).columns[0].values()[0] -%}
    {%- endif -%}
{%- endif -%}
cast('{{ value if value is not none else default }}' as date)
{%- endmacro %}

{% macro day_window_between() -%}
between {{ day_window_bound('min_date', '1900-01-01') }} and {{ day_window_bound('max_date', '2999-12-31') }}
{%- endmacro %}

{#- The days the window's requests ran on: the ingest refuses a request that lasts more than a day
    (warehouse/ingest/rules.py), so one that arrived in the window ran on its days or the day after. -#}
{% macro day_window_run_days() -%}
between {{ day_window_bound('min_date', '1900-01-01') }} and {{ day_window_bound('max_date', '2999-12-31') }} + 1
{%- endmacro %}

{% macro day_window_config(day_expr='date') -%}
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    on_schema_change='sync_all_columns',
    pre_hook="{% if is_incremental() %}delete from {{ this }} where " ~ day_expr ~ " {{ day_window_between() }}{% endif %}"
) }}
{%- endmacro %}

{#- Data tests on the day-partitioned tables check the run's days only: their yml says
    `config: {where: "date __day_window__"}`, and this override of dbt's get_where_subquery (run when
    the test runs, not at parse time) puts the window in place of the token; a full build (an empty
    run.dbt_window) tests every day. -#}
{% macro get_where_subquery(relation) -%}
    {%- set where = config.get('where', '') -%}
    {%- if where -%}
        {%- if '__day_window__' in where -%}
            {%- set where = where | replace('__day_window__', day_window_between()) -%}
        {%- endif -%}
        {%- set filtered -%}
            (select * from {{ relation }} where {{ where }}) dbt_subquery
        {%- endset -%}
        {%- do return(filtered) -%}
    {%- else -%}
        {%- do return(relation) -%}
    {%- endif -%}
{%- endmacro %}
