-- Per day x chip x model x task: fct_token_economics summed over tiers (one aggregation of the
-- requests, not two), with its cost per million tokens and joules per token.
-- incremental by UTC day: see macros/day_window.sql
{{ day_window_config() }}
with economics as (
    select * from {{ ref('fct_token_economics') }}
    {% if is_incremental() %}
    where date {{ day_window_between() }}
    {% endif %}
),

final as (
    select
        date, chip, vendor, model, task,
        sum(requests) as requests,
        sum(input_tokens) as prompt_tokens,
        sum(output_tokens) as completion_tokens,
        sum(tokens) as tokens,
        {{ j_to_kwh('sum(energy_j)') }} as energy_kwh,
        {{ j_to_kwh('sum(active_energy_j)') }} as active_energy_kwh,
        sum(cost_usd) as cost_usd,
        sum(usage_cost_usd) as usage_cost_usd,
        sum(revenue_usd) as revenue_usd,
        {{ per_unit('cost_usd', 'tokens', 1e6) }} as usd_per_mtok,
        {{ per_unit('usage_cost_usd', 'tokens', 1e6) }} as usage_usd_per_mtok,
        {{ per_unit('energy_j', 'tokens') }} as j_per_token,
        {{ per_unit('energy_j', 'output_tokens') }} as j_per_output_token,
        -- input (prefill) vs output (decode): prompt_tokens x input + completion_tokens x output
        -- per-token figures add up to the blended one (the attribution's prefill/decode split)
        sum(input_cost_usd) as input_cost_usd,
        sum(output_cost_usd) as output_cost_usd,
        sum(input_usage_cost_usd) as input_usage_cost_usd,
        sum(output_usage_cost_usd) as output_usage_cost_usd,
        {{ j_to_kwh('sum(input_energy_j)') }} as input_energy_kwh,
        {{ j_to_kwh('sum(output_energy_j)') }} as output_energy_kwh,
        {{ per_unit('input_cost_usd', 'input_tokens', 1e6) }} as input_usd_per_mtok,
        {{ per_unit('output_cost_usd', 'output_tokens', 1e6) }} as output_usd_per_mtok,
        {{ per_unit('input_usage_cost_usd', 'input_tokens', 1e6) }} as input_usage_usd_per_mtok,
        {{ per_unit('output_usage_cost_usd', 'output_tokens', 1e6) }} as output_usage_usd_per_mtok,
        {{ per_unit('input_energy_j', 'input_tokens') }} as j_per_input_token_prefill,
        {{ per_unit('output_energy_j', 'output_tokens') }} as j_per_output_token_decode,
    from economics
    group by all
)

select * from final
