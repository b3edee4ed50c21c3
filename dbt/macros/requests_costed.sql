{#- The per-request energy and cost of marts.fct_request_energy (intermediate.int_requests_costed is
    this, over every day). windowed=true: only the requests that arrived on the run's days
    (macros/day_window.sql); every figure is computed within the UTC day of arrival, so the window's
    rows equal those of the whole table.
    Per-request energy and cost on two bases (as OpenCost does for GPUs):
      allocation: the request carries its share (by fully loaded energy) of its replica-day's whole
                  bill: hardware for every hour, energy including idle and unused capacity; plus its
                  share of bills that have no request of their own (replica-days without requests,
                  devices in no replica), spread over the same chip's requests that day, else the
                  fleet's that day (int_cost_allocation). Summed over requests, cost_usd equals the
                  fleet bill of every day with traffic (marts.fct_cost_reconciliation, dbt/tests).
    Everything here is computed within the UTC day, so a day-window rebuild gives the same rows.
      usage:      only what it used: its active energy at the site tariff of the hour it arrived,
                  and the hardware time in proportion to its active energy.
    Shares are by fully loaded energy; a group with no energy falls back to tokens, then to counts. -#}
{% macro requests_costed(windowed=false) -%}
{%- set share_groups = {'w_replica_day': 'grd', 'w_chip_day': 'gcd', 'w_day': 'gd'} %}
with requests as (
    select * from {{ ref('stg_raw__requests') }}
    {%- if windowed %} where date {{ day_window_between() }}{% endif %}
),

energy as (
    {%- if windowed %}
    {#- the window's requests only: their rows of the days they ran on (day_window_run_days), summed
        per request as stg_attribution__request_energy does #}
    {{ request_energy_by_request("date " ~ day_window_run_days()
                                 ~ " and request_id in (select request_id from requests)") }}
    {%- else %}
    select * from {{ ref('stg_attribution__request_energy') }}
    {%- endif %}
),

replicas as (
    select * from {{ ref('stg_raw__replicas') }}
),

allocation as (
    select * from {{ ref('int_cost_allocation') }}
    {%- if windowed %} where date {{ day_window_between() }}{% endif %}
),

device_days as (
    select * from {{ ref('int_device_day_costed') }}
    {%- if windowed %} where date {{ day_window_between() }}{% endif %}
),

tariff_hours as (
    select * from {{ source('ref', 'tariff_hours') }}
),

-- the bill of replica-days that had requests (spread over those requests)
replica_days as (
    select
        replica_id, date,
        sum(total_cost_usd) as total_cost_usd,
        sum(energy_cost_usd) as energy_cost_usd,
        sum(hardware_cost_usd) as hardware_cost_usd,
    from allocation
    where spread_level = 'replica_day'
    group by all
),

-- what the usage basis needs about each replica-day, whether or not it had requests
replica_day_rates as (
    select
        replica_id, date,
        sum(hardware_cost_usd) as hardware_cost_usd,
        sum(measured_energy_j) as measured_energy_j,
        avg(pue) as pue,
        avg(base_usd_per_kwh) as base_usd_per_kwh,
    from device_days
    where replica_id is not null
    group by all
),

chip_day_pool as (
    select chip, date, sum(total_cost_usd) as total_cost_usd, sum(energy_cost_usd) as energy_cost_usd,
           sum(hardware_cost_usd) as hardware_cost_usd
    from allocation where spread_level = 'chip_day' group by all
),

fleet_day_pool as (
    select date, sum(total_cost_usd) as total_cost_usd, sum(energy_cost_usd) as energy_cost_usd,
           sum(hardware_cost_usd) as hardware_cost_usd
    from allocation where spread_level = 'fleet_day' group by all
),

joined as (
    select
        r.*,
        rep.chip, rep.vendor, rep.device_count,
        coalesce(e.active_energy_j, 0) as active_energy_j,
        coalesce(e.idle_share_j, 0) as idle_share_j,
        coalesce(e.energy_j, 0) as energy_j,
        e.prefill_energy_j, e.decode_energy_j, e.prefill_device_s, e.decode_device_s,
        -- the attribution's own split of the active energy between the two phases; a request without
        -- one (no attribution row, or a warehouse written before the split) falls back to tokens
        case when e.active_energy_j > 0 and e.prefill_energy_j is not null
                 then e.prefill_energy_j / e.active_energy_j
             when r.total_tokens > 0 then r.prompt_tokens / r.total_tokens
             else 1.0 end as input_share,
    from requests as r
    left join energy as e using (request_id)
    left join replicas as rep using (replica_id)
),

g_replica_day as (
    select replica_id, date, sum(energy_j) as e, sum(total_tokens) as t, count(*) as n
    from joined where replica_id is not null group by all
),

g_chip_day as (
    select chip, date, sum(energy_j) as e, sum(total_tokens) as t, count(*) as n
    from joined where chip is not null group by all
),

g_day as (
    select date, sum(energy_j) as e, sum(total_tokens) as t, count(*) as n from joined group by all
),

shares as (
    select
        j.*,
        {%- for name, g in share_groups.items() %}
        case when {{ g }}.e > 0 then j.energy_j / {{ g }}.e
             when {{ g }}.t > 0 then j.total_tokens / {{ g }}.t
             else 1.0 / {{ g }}.n end as {{ name }},
        {%- endfor %}
    from joined as j
    left join g_replica_day as grd on grd.replica_id = j.replica_id and grd.date = j.date
    left join g_chip_day as gcd on gcd.chip = j.chip and gcd.date = j.date
    left join g_day as gd on gd.date = j.date
),

api_prices as (
    select * from {{ source('ref', 'api_prices') }}
),

subscription as (
    select * from {{ source('ref', 'subscription') }}
),

sub_day as (
    select date, sum(total_tokens) as sub_tokens
    from requests where tier = 'subscription' group by date
),

costed as (
    select
        s.*,
        -- allocation basis: own replica-day bill
        coalesce(rd.total_cost_usd * s.w_replica_day, 0) as direct_cost_usd,
        coalesce(rd.energy_cost_usd * s.w_replica_day, 0) as direct_energy_cost_usd,
        coalesce(rd.hardware_cost_usd * s.w_replica_day, 0) as direct_hardware_cost_usd,
        -- ... plus the spread of bills without requests of their own
        coalesce(cp.total_cost_usd * s.w_chip_day, 0) + coalesce(fp.total_cost_usd * s.w_day, 0) as spread_cost_usd,
        coalesce(cp.energy_cost_usd * s.w_chip_day, 0) + coalesce(fp.energy_cost_usd * s.w_day, 0) as spread_energy_cost_usd,
        coalesce(cp.hardware_cost_usd * s.w_chip_day, 0) + coalesce(fp.hardware_cost_usd * s.w_day, 0) as spread_hardware_cost_usd,
        -- usage basis: what the request itself used, energy priced at its arrival hour
        {{ j_to_kwh('s.active_energy_j') }} * rr.pue * rr.base_usd_per_kwh * coalesce(th.multiplier, 1.0)
            + rr.hardware_cost_usd * s.active_energy_j / nullif(rr.measured_energy_j, 0) as usage_cost_usd,
        case s.tier
            when 'api' then (s.prompt_tokens * ap.usd_per_mtok_input + s.completion_tokens * ap.usd_per_mtok_output) / 1e6
            when 'subscription' then sub.monthly_fee_usd * sub.subscribers / 30.0 * s.total_tokens / nullif(sd.sub_tokens, 0)
            else 0.0
        end as revenue_usd,
        case s.tier
            when 'api' then s.prompt_tokens * ap.usd_per_mtok_input / 1e6
            when 'subscription' then sub.monthly_fee_usd * sub.subscribers / 30.0 * s.prompt_tokens / nullif(sd.sub_tokens, 0)
            else 0.0
        end as input_revenue_usd,
    from shares as s
    left join replica_days as rd on rd.replica_id = s.replica_id and rd.date = s.date
    left join chip_day_pool as cp on cp.chip = s.chip and cp.date = s.date
    left join fleet_day_pool as fp on fp.date = s.date
    left join replica_day_rates as rr on rr.replica_id = s.replica_id and rr.date = s.date
    left join tariff_hours as th on th.hour = hour(timezone('UTC', s.arrival_ts))
    left join api_prices as ap on ap.model = s.model
    left join sub_day as sd on sd.date = s.date
    cross join subscription as sub
),

final as (
    select
        request_id, replica_id, node, chip, vendor, model, task, language, tier, status,
        arrival_ts, date, prompt_tokens, completion_tokens, total_tokens, ttft_s, latency_s,
        active_energy_j, idle_share_j, energy_j, {{ j_to_kwh('energy_j') }} as energy_kwh,
        direct_cost_usd + spread_cost_usd as cost_usd,
        direct_energy_cost_usd + spread_energy_cost_usd as energy_cost_usd,
        direct_hardware_cost_usd + spread_hardware_cost_usd as hardware_cost_usd,
        spread_cost_usd,
        usage_cost_usd,
        revenue_usd,
        -- prefill (input tokens) vs decode (output tokens), as the attribution split the request's
        -- active energy (stg_attribution__request_energy); everything else follows input_share, and
        -- output = total - input
        greatest(coalesce(epoch_us(first_token_ts - scheduled_ts) / 1e6, 0), 0) as prefill_s,
        case when completion_tokens > 1
             then greatest(coalesce(epoch_us(finish_ts - first_token_ts) / 1e6, 0), 0) else 0 end as decode_s,
        coalesce(prefill_device_s, 0) as prefill_device_s,
        coalesce(decode_device_s, 0) as decode_device_s,
        coalesce(prefill_energy_j, 0) as prefill_energy_j,
        coalesce(decode_energy_j, 0) as decode_energy_j,
        input_share,
        energy_j * input_share as input_energy_j,
        energy_j - energy_j * input_share as output_energy_j,
        (direct_cost_usd + spread_cost_usd) * input_share as input_cost_usd,
        (direct_cost_usd + spread_cost_usd) - (direct_cost_usd + spread_cost_usd) * input_share as output_cost_usd,
        usage_cost_usd * input_share as input_usage_cost_usd,
        usage_cost_usd - usage_cost_usd * input_share as output_usage_cost_usd,
        input_revenue_usd,
        revenue_usd - input_revenue_usd as output_revenue_usd,
    from costed
)

select * from final
{%- endmacro %}
