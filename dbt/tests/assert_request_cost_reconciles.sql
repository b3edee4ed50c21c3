-- Sum of per-request allocated cost (marts.fct_request_energy.cost_usd) equals the fleet bill
-- (every device-day, int_device_day_costed) of the days with traffic within 0.01 %, and so do its
-- energy and hardware parts. Computed from the two sources directly, not from
-- fct_cost_reconciliation. A day on which the fleet served no request has nothing to carry its
-- bill (allocation stays within the UTC day); when every day has traffic this is the whole bill.
-- Returns the failing totals (a dbt singular test fails when it returns rows).
with allocated as (
    select count(*) as requests, coalesce(sum(cost_usd), 0) as cost_usd,
           coalesce(sum(energy_cost_usd), 0) as energy_cost_usd, coalesce(sum(hardware_cost_usd), 0) as hardware_cost_usd
    from {{ ref('fct_request_energy') }}
),

days_with_requests as (
    select distinct date from {{ ref('fct_request_energy') }}
),

bill as (
    select coalesce(sum(d.total_cost_usd), 0) as cost_usd, coalesce(sum(d.energy_cost_usd), 0) as energy_cost_usd,
           coalesce(sum(d.hardware_cost_usd), 0) as hardware_cost_usd
    from {{ ref('int_device_day_costed') }} as d
    where d.date in (select date from days_with_requests)
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
