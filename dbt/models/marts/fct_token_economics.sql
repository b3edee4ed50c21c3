-- Unit economics per day x chip x vendor x model x task x tier, input (prefill) and output (decode)
-- tokens apart, on both cost bases (allocation: the request's share of the whole bill; usage: what
-- it used), with revenue and margin (revenue - allocated cost). Input + output = blended, exactly
-- in USD and as prompt_tokens x input $/Mtok + completion_tokens x output $/Mtok. The one place
-- the money marts add requests up: fct_cost_per_token_daily is this, summed over tiers.
-- incremental by UTC day: see macros/day_window.sql
{{ day_window_config() }}
with requests as (
    select * from {{ ref('fct_request_energy') }}
    {% if is_incremental() %}
    where date {{ day_window_between() }}
    {% endif %}
),

final as (
    select
        date, chip, vendor, model, task, tier,
        count(*) as requests,
        sum(prompt_tokens) as input_tokens,
        sum(completion_tokens) as output_tokens,
        sum(total_tokens) as tokens,
        sum(prefill_s) as prefill_s,
        sum(decode_s) as decode_s,
        sum(prefill_device_s) as prefill_device_s,
        sum(decode_device_s) as decode_device_s,
        sum(energy_j) as energy_j,
        sum(active_energy_j) as active_energy_j,
        sum(input_energy_j) as input_energy_j,
        sum(output_energy_j) as output_energy_j,
        {{ j_to_kwh('sum(input_energy_j)') }} as input_energy_kwh,
        {{ j_to_kwh('sum(output_energy_j)') }} as output_energy_kwh,
        sum(cost_usd) as cost_usd,
        sum(input_cost_usd) as input_cost_usd,
        sum(output_cost_usd) as output_cost_usd,
        sum(usage_cost_usd) as usage_cost_usd,
        sum(input_usage_cost_usd) as input_usage_cost_usd,
        sum(output_usage_cost_usd) as output_usage_cost_usd,
        sum(revenue_usd) as revenue_usd,
        sum(input_revenue_usd) as input_revenue_usd,
        sum(output_revenue_usd) as output_revenue_usd,
        sum(revenue_usd) - sum(cost_usd) as margin_usd,
        sum(revenue_usd) - sum(usage_cost_usd) as usage_margin_usd,
        {{ per_unit('cost_usd', 'total_tokens', 1e6) }} as usd_per_mtok,
        {{ per_unit('input_cost_usd', 'prompt_tokens', 1e6) }} as input_usd_per_mtok,
        {{ per_unit('output_cost_usd', 'completion_tokens', 1e6) }} as output_usd_per_mtok,
        {{ per_unit('input_usage_cost_usd', 'prompt_tokens', 1e6) }} as input_usage_usd_per_mtok,
        {{ per_unit('output_usage_cost_usd', 'completion_tokens', 1e6) }} as output_usage_usd_per_mtok,
    from requests
    group by all
)

select * from final
