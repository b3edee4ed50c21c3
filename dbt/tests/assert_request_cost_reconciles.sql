-- Sum of per-request allocated cost (marts.fct_request_energy.cost_usd) equals the fleet bill for
-- the period (every device-day, int_device_day_costed) within 0.01 %, and so do its energy and
-- hardware parts. Computed from the two sources directly, not from fct_cost_reconciliation.
-- Returns the failing totals (a dbt singular test fails when it returns rows). A period without
-- any request has nothing to allocate to and is not checked.
with allocated as (
    select count(*) as requests, coalesce(sum(cost_usd), 0) as cost_usd,
           coalesce(sum(energy_cost_usd), 0) as energy_cost_usd, coalesce(sum(hardware_cost_usd), 0) as hardware_cost_usd
    from {{ ref('fct_request_energy') }}
),

bill as (
    select coalesce(sum(total_cost_usd), 0) as cost_usd, coalesce(sum(energy_cost_usd), 0) as energy_cost_usd,
           coalesce(sum(hardware_cost_usd), 0) as hardware_cost_usd
    from {{ ref('int_device_day_costed') }}
),

compared as (
    select 'total' as part, a.cost_usd as allocated_usd, b.cost_usd as bill_usd, a.requests from allocated a, bill b
    union all
    select 'energy', a.energy_cost_usd, b.energy_cost_usd, a.requests from allocated a, bill b
    union all
    select 'hardware', a.hardware_cost_usd, b.hardware_cost_usd, a.requests from allocated a, bill b
)

select *, abs(allocated_usd - bill_usd) / nullif(bill_usd, 0) as difference_rel
from compared
where requests > 0
  and abs(allocated_usd - bill_usd) > 0.0001 * greatest(abs(bill_usd), 1e-9)
