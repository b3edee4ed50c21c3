-- Cost of every device-day: hardware for the hours it was held, energy at the site's PUE and tariff.
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

tariff as (
    select avg(multiplier) as day_multiplier from {{ source('ref', 'tariff_hours') }}
),

final as (
    select
        d.*,
        coalesce(ns.site, 'default') as site,
        s.pue,
        s.usd_per_kwh * t.day_multiplier as usd_per_kwh,
        c.hardware_usd_per_device_hour,
        d.measured_energy_j / 3.6e6 as measured_energy_kwh,
        d.measured_energy_j / 3.6e6 * s.pue * s.usd_per_kwh * t.day_multiplier as energy_cost_usd,
        24.0 * coalesce(c.hardware_usd_per_device_hour, 0) as hardware_cost_usd,
        d.measured_energy_j / 3.6e6 * s.pue * s.usd_per_kwh * t.day_multiplier
            + 24.0 * coalesce(c.hardware_usd_per_device_hour, 0) as total_cost_usd,
    from device_day as d
    left join node_sites as ns on ns.node = d.node
    left join sites as s on s.site = coalesce(ns.site, 'default')
    left join chip_costs as c on c.chip = d.chip
    cross join tariff as t
)

select * from final
