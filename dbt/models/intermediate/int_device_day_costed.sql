-- Cost of every device-day: hardware for the hours it was held, energy at the site's PUE and tariff.
-- Hours held = the device-day's covered_s (first to last sample of the day, extended to midnight
-- within a normal sampling gap: a device sampled all day has 24 h, one seen for 3 s has 3 s), so a
-- device that joined or left the fleet mid-day is charged for its time present, not a whole day.
-- Time-of-day tariff (ref.tariff_hours, UTC hours) is applied by hour: the device-day's measured
-- energy is split over its hours in proportion to the sampled power in each hour (sum of power_w
-- per UTC hour: samples come at a fixed interval, so this is proportional to the hour's energy),
-- and each hour's share is priced at that hour's multiplier. A device-day without power samples
-- falls back to the 24-hour mean multiplier.
with device_day as (
    select * from {{ ref('stg_attribution__device_day') }}
),

chip_costs as (
    select * from {{ source('ref', 'chip_costs') }}
),

sites as (
    select * from {{ source('ref', 'sites') }}
),

node_sites as (
    select * from {{ source('ref', 'node_sites') }}
),

tariff_hours as (
    select * from {{ source('ref', 'tariff_hours') }}
),

tariff as (
    select avg(multiplier) as day_multiplier from tariff_hours
),

samples as (
    select
        device_id,
        cast(timezone('UTC', ts) as date) as date,
        hour(timezone('UTC', ts)) as hour,
        sum(greatest(power_w, 0)) as power_sum_w,
    from {{ ref('stg_raw__device_samples') }}
    where power_w is not null
    group by all
),

hourly_tariff as (
    select
        s.device_id, s.date,
        sum(s.power_sum_w * coalesce(th.multiplier, 1.0)) / nullif(sum(s.power_sum_w), 0) as energy_multiplier,
    from samples as s
    left join tariff_hours as th on th.hour = s.hour
    group by all
),

final as (
    select
        d.*,
        coalesce(ns.site, 'default') as site,
        s.pue,
        s.usd_per_kwh as base_usd_per_kwh,
        coalesce(ht.energy_multiplier, t.day_multiplier) as tariff_multiplier,
        s.usd_per_kwh * coalesce(ht.energy_multiplier, t.day_multiplier) as usd_per_kwh,
        c.basis as cost_basis,
        c.hardware_usd_per_device_hour,
        least(greatest(d.covered_s, 0), 86400.0) / 3600.0 as present_h,
        {{ j_to_kwh('d.measured_energy_j') }} as measured_energy_kwh,
        {{ j_to_kwh('d.measured_energy_j') }} * s.pue * s.usd_per_kwh * coalesce(ht.energy_multiplier, t.day_multiplier)
            as energy_cost_usd,
        least(greatest(d.covered_s, 0), 86400.0) / 3600.0 * coalesce(c.hardware_usd_per_device_hour, 0) as hardware_cost_usd,
        {{ j_to_kwh('d.measured_energy_j') }} * s.pue * s.usd_per_kwh * coalesce(ht.energy_multiplier, t.day_multiplier)
            + least(greatest(d.covered_s, 0), 86400.0) / 3600.0 * coalesce(c.hardware_usd_per_device_hour, 0)
            as total_cost_usd,
    from device_day as d
    left join node_sites as ns on ns.node = d.node
    left join sites as s on s.site = coalesce(ns.site, 'default')
    left join chip_costs as c on c.chip = d.chip
    left join hourly_tariff as ht on ht.device_id = d.device_id and ht.date = d.date
    cross join tariff as t
)

select * from final
