-- marts.fct_cost_reconciliation: the period row reconciles within 0.01 %, and the bill's parts
-- (direct + unallocated by reason) and its destinations (direct + spread + unallocatable) each add
-- up to the bill.
select *
from {{ ref('fct_cost_reconciliation') }}
where (grain = 'period' and requests > 0 and abs(difference_usd) > 0.0001 * greatest(fleet_bill_usd, 1e-9))
   or abs(direct_usd + unallocated_replica_day_without_requests_usd + unallocated_device_not_in_replica_usd
          - fleet_bill_usd) > 1e-6 * greatest(fleet_bill_usd, 1.0)
   or abs(direct_usd + spread_chip_day_usd + spread_fleet_day_usd + spread_period_usd + unallocatable_usd
          - fleet_bill_usd) > 1e-6 * greatest(fleet_bill_usd, 1.0)
