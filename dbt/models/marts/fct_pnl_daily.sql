-- Daily P&L: revenue from requests; cost is the whole fleet bill (every device-day, including
-- capacity no request used); operating loss = total cost - revenue.
with revenue as (
    select date, vendor, sum(revenue_usd) as revenue_usd, sum(total_tokens) as tokens
    from {{ ref('fct_request_energy') }} group by all
),

costs as (
    select date, vendor, sum(energy_cost_usd) as energy_cost_usd, sum(hardware_cost_usd) as hardware_cost_usd,
           sum(total_cost_usd) as total_cost_usd
    from {{ ref('int_device_day_costed') }} group by all
),

by_vendor as (
    select
        coalesce(c.date, r.date) as date,
        coalesce(c.vendor, r.vendor) as vendor,
        coalesce(r.revenue_usd, 0) as revenue_usd,
        coalesce(c.energy_cost_usd, 0) as energy_cost_usd,
        coalesce(c.hardware_cost_usd, 0) as hardware_cost_usd,
        coalesce(c.total_cost_usd, 0) as total_cost_usd,
        coalesce(r.tokens, 0) as tokens,
    from costs as c
    full outer join revenue as r on r.date = c.date and r.vendor = c.vendor
),

overall as (
    select date, 'all' as vendor, sum(revenue_usd) as revenue_usd, sum(energy_cost_usd) as energy_cost_usd,
           sum(hardware_cost_usd) as hardware_cost_usd, sum(total_cost_usd) as total_cost_usd, sum(tokens) as tokens
    from by_vendor group by date
),

final as (
    select *, total_cost_usd - revenue_usd as operating_loss_usd from by_vendor
    union all
    select *, total_cost_usd - revenue_usd as operating_loss_usd from overall
)

select * from final
