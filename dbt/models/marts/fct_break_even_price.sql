-- Break-even API price per model x chip over the whole history (allocation basis: the whole
-- fleet bill is covered). Per meter: the cost of an input token and of an output token, in USD per
-- million tokens, is the price at which that meter breaks even. Against the list: the factor by
-- which the current API prices (ref.api_prices) would have to be scaled for the served tokens,
-- priced at that list, to cover their cost (1 = break-even; above 1 = the list loses money).
with tokens as (
    select chip, vendor, model,
           sum(input_tokens) as input_tokens, sum(output_tokens) as output_tokens,
           sum(cost_usd) as cost_usd, sum(input_cost_usd) as input_cost_usd, sum(output_cost_usd) as output_cost_usd,
           sum(usage_cost_usd) as usage_cost_usd,
           sum(input_usage_cost_usd) as input_usage_cost_usd, sum(output_usage_cost_usd) as output_usage_cost_usd,
           sum(revenue_usd) as revenue_usd,
    from {{ ref('fct_token_economics') }}
    group by all
),

api_prices as (
    select * from {{ source('ref', 'api_prices') }}
),

final as (
    select
        t.chip, t.vendor, t.model, t.input_tokens, t.output_tokens, t.cost_usd, t.revenue_usd,
        t.input_cost_usd / nullif(t.input_tokens, 0) * 1e6 as break_even_usd_per_mtok_input,
        t.output_cost_usd / nullif(t.output_tokens, 0) * 1e6 as break_even_usd_per_mtok_output,
        t.input_usage_cost_usd / nullif(t.input_tokens, 0) * 1e6 as usage_break_even_usd_per_mtok_input,
        t.output_usage_cost_usd / nullif(t.output_tokens, 0) * 1e6 as usage_break_even_usd_per_mtok_output,
        ap.usd_per_mtok_input as list_usd_per_mtok_input,
        ap.usd_per_mtok_output as list_usd_per_mtok_output,
        (t.input_tokens * ap.usd_per_mtok_input + t.output_tokens * ap.usd_per_mtok_output) / 1e6
            as list_revenue_usd,
        t.cost_usd / nullif((t.input_tokens * ap.usd_per_mtok_input + t.output_tokens * ap.usd_per_mtok_output) / 1e6, 0)
            as break_even_list_scale,
    from tokens as t
    left join api_prices as ap on ap.model = t.model
)

select * from final
