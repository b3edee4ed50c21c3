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
        date, chip, vendor, model, task,
        count(*) as requests,
        sum(prompt_tokens) as prompt_tokens,
        sum(completion_tokens) as completion_tokens,
        sum(total_tokens) as tokens,
        {{ j_to_kwh('sum(energy_j)') }} as energy_kwh,
        {{ j_to_kwh('sum(active_energy_j)') }} as active_energy_kwh,
        sum(cost_usd) as cost_usd,
        sum(usage_cost_usd) as usage_cost_usd,
        sum(revenue_usd) as revenue_usd,
        sum(cost_usd) / nullif(sum(total_tokens), 0) * 1e6 as usd_per_mtok,
        sum(usage_cost_usd) / nullif(sum(total_tokens), 0) * 1e6 as usage_usd_per_mtok,
        sum(energy_j) / nullif(sum(total_tokens), 0) as j_per_token,
        sum(energy_j) / nullif(sum(completion_tokens), 0) as j_per_output_token,
        -- input (prefill) vs output (decode): prompt_tokens x input + completion_tokens x output
        -- per-token figures add up to the blended one (int_request_phases)
        sum(input_cost_usd) as input_cost_usd,
        sum(output_cost_usd) as output_cost_usd,
        sum(input_usage_cost_usd) as input_usage_cost_usd,
        sum(output_usage_cost_usd) as output_usage_cost_usd,
        sum(input_energy_j) / 3.6e6 as input_energy_kwh,
        sum(output_energy_j) / 3.6e6 as output_energy_kwh,
        sum(input_cost_usd) / nullif(sum(prompt_tokens), 0) * 1e6 as input_usd_per_mtok,
        sum(output_cost_usd) / nullif(sum(completion_tokens), 0) * 1e6 as output_usd_per_mtok,
        sum(input_usage_cost_usd) / nullif(sum(prompt_tokens), 0) * 1e6 as input_usage_usd_per_mtok,
        sum(output_usage_cost_usd) / nullif(sum(completion_tokens), 0) * 1e6 as output_usage_usd_per_mtok,
        sum(input_energy_j) / nullif(sum(prompt_tokens), 0) as j_per_input_token_prefill,
        sum(output_energy_j) / nullif(sum(completion_tokens), 0) as j_per_output_token_decode,
    from requests
    group by all
)

select * from final
