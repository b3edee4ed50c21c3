-- The whole footprint of each node and UTC day, split by boundary (the split of Google, arXiv 2508.15734):
--   accelerator_j  accelerator energy attributed to the node's requests (attribution.request_energy)
--   reserve_j      accelerator energy of capacity that served nothing: spare devices, replicas without
--                  traffic, idle not shared out (measured device energy - accelerator_j)
--   host_j         CPU package and DRAM energy (raw.host_samples, package-* and dram-* domains)
--   facility_j     (PUE - 1) x (measured device energy + host_j), PUE from ref.sites (the price file)
-- so accelerator_j + reserve_j + host_j + facility_j = total_j = PUE x (measured device + host energy).
-- The part shared out to requests (shared_j) is total_j on a node-day with requests, less the reserve
-- and its facility overhead when var footprint_share_reserve is false; the rest is unshared_j.
-- Carbon and water: total kWh x the site's factors (ref.site_footprint, the 'default' site for a site
-- the footprint file does not name); the location-based intensity is the hourly profile weighted by
-- the node-day's host energy per UTC hour (the annual factor without host readings).
with device_day as (
    select * from {{ ref('stg_attribution__device_day') }}
),

request_days as (
    select * from {{ source('attribution', 'request_energy') }}
),

requests as (
    select request_id, node from {{ ref('stg_raw__requests') }}
),

host as (
    select * from {{ ref('stg_raw__host_samples') }} where is_host_domain
),

node_sites as (
    select * from {{ source('ref', 'node_sites') }}
),

sites as (
    select * from {{ source('ref', 'sites') }}
),

site_footprint as (
    select * from {{ source('ref', 'site_footprint') }}
),

carbon_hours as (
    select * from {{ source('ref', 'site_carbon_hours') }}
),

accel as (
    select
        date, node,
        sum(measured_energy_j) as device_measured_j,
        count(*) as devices,
        count(*) filter (where replica_id is null) as spare_devices,
    from device_day
    group by all
),

served as (
    select rd.date, r.node, sum(rd.energy_j) as accelerator_j, count(distinct rd.request_id) as requests,
    from request_days as rd
    inner join requests as r using (request_id)
    group by all
),

host_hours as (
    select date, node, hour, sum(energy_j) as energy_j from host group by all
),

host_day as (
    select date, node, sum(energy_j) as host_j from host_hours group by all
),

node_days as (
    select date, node from accel
    union
    select date, node from host_day
    union
    select date, node from served
),

located as (
    select
        nd.date, nd.node,
        coalesce(ns.site, 'default') as site,
        coalesce(f.site, 'default') as factor_site,
    from node_days as nd
    left join node_sites as ns on ns.node = nd.node
    left join site_footprint as f on f.site = coalesce(ns.site, 'default')
),

hourly_intensity as (
    select
        h.date, h.node,
        sum(h.energy_j * ch.location_g_per_kwh) / nullif(sum(h.energy_j), 0) as location_g_per_kwh,
    from host_hours as h
    inner join located as l on l.date = h.date and l.node = h.node
    inner join carbon_hours as ch on ch.site = l.factor_site and ch.hour = h.hour
    group by all
),

joined as (
    select
        l.date, l.node, l.site, l.factor_site, s.pue,
        coalesce(a.device_measured_j, 0) as device_measured_j,
        coalesce(sv.accelerator_j, 0) as accelerator_j,
        coalesce(h.host_j, 0) as host_j,
        coalesce(sv.requests, 0) as requests,
        coalesce(a.devices, 0) as devices,
        coalesce(a.spare_devices, 0) as spare_devices,
        coalesce(hi.location_g_per_kwh, f.location_g_per_kwh) as location_g_per_kwh,
        f.market_g_per_kwh,
        f.onsite_l_per_kwh,
        f.source_l_per_kwh,
    from located as l
    left join sites as s on s.site = l.site
    left join site_footprint as f on f.site = l.factor_site
    left join accel as a on a.date = l.date and a.node = l.node
    left join served as sv on sv.date = l.date and sv.node = l.node
    left join host_day as h on h.date = l.date and h.node = l.node
    left join hourly_intensity as hi on hi.date = l.date and hi.node = l.node
),

split as (
    select
        *,
        device_measured_j - accelerator_j as reserve_j,
        (pue - 1) * (device_measured_j + host_j) as facility_j,
        pue * (device_measured_j + host_j) as total_j,
        case when accelerator_j > 0 then host_j else 0 end as host_shared_j,
        case when accelerator_j > 0 and {{ var('footprint_share_reserve', true) }}
            then device_measured_j - accelerator_j else 0 end as reserve_shared_j,
    from joined
),

final as (
    select
        date, node, site, pue, requests, devices, spare_devices,
        device_measured_j, accelerator_j, host_j, reserve_j, facility_j, total_j,
        host_shared_j, reserve_shared_j,
        case when accelerator_j > 0 then (pue - 1) * (accelerator_j + host_shared_j + reserve_shared_j) else 0 end
            as facility_shared_j,
        case when accelerator_j > 0 then pue * (accelerator_j + host_shared_j + reserve_shared_j) else 0 end
            as shared_j,
        total_j - case when accelerator_j > 0 then pue * (accelerator_j + host_shared_j + reserve_shared_j) else 0 end
            as unshared_j,
        {{ j_to_kwh('total_j') }} as total_kwh,
        location_g_per_kwh, market_g_per_kwh, onsite_l_per_kwh, source_l_per_kwh,
        {{ j_to_kwh('total_j') }} * location_g_per_kwh as location_gco2e,
        {{ j_to_kwh('total_j') }} * market_g_per_kwh as market_gco2e,
        {{ j_to_kwh('total_j') }} * onsite_l_per_kwh * 1000 as onsite_water_ml,
        {{ j_to_kwh('total_j') }} * source_l_per_kwh * 1000 as source_water_ml,
    from split
)

select * from final
