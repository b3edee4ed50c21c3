-- marts.fct_cost_reconciliation: every row (each day and the period) reconciles within 0.01 %;
-- the bill's parts (direct + unallocated by reason) and its destinations (direct + spread +
-- unallocated day without requests) each add up to the bill; and only a day without any request
-- leaves cost unallocated.
select *
from {{ ref('fct_cost_reconciliation') }}
where abs(difference_usd) > 0.0001 * greatest(fleet_bill_usd, 1e-9)
   or abs(direct_usd + unallocated_replica_day_without_requests_usd + unallocated_device_not_in_replica_usd
          - fleet_bill_usd) > 1e-6 * greatest(fleet_bill_usd, 1.0)
   or abs(direct_usd + spread_chip_day_usd + spread_fleet_day_usd + unallocated_day_without_requests_usd
          - fleet_bill_usd) > 1e-6 * greatest(fleet_bill_usd, 1.0)
   or (grain = 'day' and unallocated_day_without_requests_usd > 0 and requests > 0)
