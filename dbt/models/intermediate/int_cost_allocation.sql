-- Where each device-day's bill goes, so that the requests carry the whole fleet bill (allocation
-- basis reconciles with the bill; see docs/money.md):
--   reason 'direct':                       the device serves a replica that had requests that day:
--                                          spread over those requests (spread_level 'replica_day');
--   reason 'replica_day_without_requests': the replica had no request that day;
--   reason 'device_not_in_replica':        the device is in no replica (spare, lost, unassigned).
-- Cost without a direct home is spread, in this order, over the requests of the same chip that
-- day ('chip_day'), else over all of the fleet's requests that day ('fleet_day'). Allocation stays
-- within the UTC day (so the day-windowed incremental marts stay consistent): a day on which the
-- fleet served no request at all has nothing to carry its bill and stays unallocated ('none';
-- marts.fct_cost_reconciliation shows it as unallocated_day_without_requests_usd).
with device_days as (
    select * from {{ ref('int_device_day_costed') }}
),

requests as (
    select r.request_id, r.replica_id, r.date, rep.chip
    from {{ ref('stg_raw__requests') }} as r
    left join {{ ref('stg_raw__replicas') }} as rep using (replica_id)
),

replica_day_requests as (
    select replica_id, date, count(*) as requests from requests where replica_id is not null group by all
),

chip_day_requests as (
    select chip, date, count(*) as requests from requests where chip is not null group by all
),

fleet_day_requests as (
    select date, count(*) as requests from requests group by all
),

classified as (
    select
        d.date, d.device_id, d.node, d.chip, d.vendor, d.replica_id, d.site,
        d.total_cost_usd, d.energy_cost_usd, d.hardware_cost_usd, d.measured_energy_j,
        case
            when d.replica_id is null then 'device_not_in_replica'
            when rr.replica_id is null then 'replica_day_without_requests'
            else 'direct'
        end as reason,
        case
            when d.replica_id is not null and rr.replica_id is not null then 'replica_day'
            when cr.chip is not null then 'chip_day'
            when fr.date is not null then 'fleet_day'
            else 'none'
        end as spread_level,
    from device_days as d
    left join replica_day_requests as rr on rr.replica_id = d.replica_id and rr.date = d.date
    left join chip_day_requests as cr on cr.chip = d.chip and cr.date = d.date
    left join fleet_day_requests as fr on fr.date = d.date
)

select * from classified
