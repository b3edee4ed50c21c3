-- Does the per-request cost (allocation basis) add up to the fleet bill? One row per UTC day
-- (grain 'day') and one for the whole period (grain 'period'):
--   fleet_bill_usd                       every device-day's cost (int_device_day_costed)
--   direct_usd                           bill of replica-days that had requests
--   unallocated_<reason>_usd             bill with no request of its own, by reason
--   spread_<level>_usd                   where that bill went (same chip that day, fleet that day)
--   unallocated_day_without_requests_usd bill of a day on which the fleet served no request at all:
--                                        no request can carry it (allocation stays within the day)
--   allocated_to_requests_usd            sum of marts.fct_request_energy.cost_usd
--   difference_usd / difference_rel      allocated + unallocated_day_without_requests - bill: within
--                                        0.01 % (dbt/tests/assert_request_cost_reconciles.sql); when
--                                        every day has traffic, allocated alone equals the bill
with allocation as (
    select * from {{ ref('int_cost_allocation') }}
),

requests as (
    select date, count(*) as requests, sum(cost_usd) as allocated_usd, sum(energy_cost_usd) as allocated_energy_usd,
           sum(hardware_cost_usd) as allocated_hardware_usd
    from {{ ref('fct_request_energy') }} group by all
),

bill as (
    select
        date,
        sum(total_cost_usd) as fleet_bill_usd,
        sum(energy_cost_usd) as fleet_energy_cost_usd,
        sum(hardware_cost_usd) as fleet_hardware_cost_usd,
        sum(total_cost_usd) filter (where reason = 'direct') as direct_usd,
        sum(total_cost_usd) filter (where reason = 'replica_day_without_requests') as unallocated_replica_day_without_requests_usd,
        sum(total_cost_usd) filter (where reason = 'device_not_in_replica') as unallocated_device_not_in_replica_usd,
        sum(total_cost_usd) filter (where spread_level = 'chip_day') as spread_chip_day_usd,
        sum(total_cost_usd) filter (where spread_level = 'fleet_day') as spread_fleet_day_usd,
        sum(total_cost_usd) filter (where spread_level = 'none') as unallocated_day_without_requests_usd,
        count(*) as device_days,
        count(*) filter (where reason <> 'direct') as device_days_without_requests,
    from allocation group by all
),

daily as (
    select
        'day' as grain,
        coalesce(b.date, r.date) as period_start,
        coalesce(b.date, r.date) as period_end,
        coalesce(b.fleet_bill_usd, 0) as fleet_bill_usd,
        coalesce(b.fleet_energy_cost_usd, 0) as fleet_energy_cost_usd,
        coalesce(b.fleet_hardware_cost_usd, 0) as fleet_hardware_cost_usd,
        coalesce(b.direct_usd, 0) as direct_usd,
        coalesce(b.unallocated_replica_day_without_requests_usd, 0) as unallocated_replica_day_without_requests_usd,
        coalesce(b.unallocated_device_not_in_replica_usd, 0) as unallocated_device_not_in_replica_usd,
        coalesce(b.spread_chip_day_usd, 0) as spread_chip_day_usd,
        coalesce(b.spread_fleet_day_usd, 0) as spread_fleet_day_usd,
        coalesce(b.unallocated_day_without_requests_usd, 0) as unallocated_day_without_requests_usd,
        coalesce(r.allocated_usd, 0) as allocated_to_requests_usd,
        coalesce(r.allocated_energy_usd, 0) as allocated_energy_cost_usd,
        coalesce(r.allocated_hardware_usd, 0) as allocated_hardware_cost_usd,
        coalesce(r.requests, 0) as requests,
        coalesce(b.device_days, 0) as device_days,
        coalesce(b.device_days_without_requests, 0) as device_days_without_requests,
    from bill as b
    full outer join requests as r on r.date = b.date
),

period as (
    select
        'period' as grain, min(period_start) as period_start, max(period_end) as period_end,
        sum(fleet_bill_usd), sum(fleet_energy_cost_usd), sum(fleet_hardware_cost_usd), sum(direct_usd),
        sum(unallocated_replica_day_without_requests_usd), sum(unallocated_device_not_in_replica_usd),
        sum(spread_chip_day_usd), sum(spread_fleet_day_usd), sum(unallocated_day_without_requests_usd),
        sum(allocated_to_requests_usd), sum(allocated_energy_cost_usd), sum(allocated_hardware_cost_usd),
        sum(requests), sum(device_days), sum(device_days_without_requests),
    from daily
    having count(*) > 0
),

unioned as (
    select * from daily
    union all
    select * from period
),

final as (
    select
        *,
        allocated_to_requests_usd + unallocated_day_without_requests_usd - fleet_bill_usd as difference_usd,
        (allocated_to_requests_usd + unallocated_day_without_requests_usd - fleet_bill_usd)
            / nullif(fleet_bill_usd, 0) as difference_rel,
    from unioned
)

select * from final
