-- The whole footprint of each node and UTC day, split by boundary (the split of Google, arXiv 2508.15734):
--   accelerator_j  accelerator energy attributed to the node's requests (attribution.request_energy)
--   reserve_j      accelerator energy of capacity that served nothing: spare devices, replicas without
--                  traffic, idle not shared out (measured device energy - accelerator_j)
--   host_j         CPU package and DRAM energy (raw.host_samples, package-* and dram-* domains)
--   facility_j     (PUE - 1) x (measured device energy + host_j), PUE from ref.sites (the price file)
-- so accelerator_j + reserve_j + host_j + facility_j = total_j = PUE x (measured device + host energy).
-- Sharing (var footprint_share_reserve, default true; false reports the reserve and shares none of it):
--   a node-day with requests shares its whole total_j with them (host and reserve in proportion to
--   their accelerator energy); a node-day without requests (a spare node, idle replicas only) is
--   pooled: its whole total_j goes to the requests of the same chip that day, else to the fleet's
--   that day (the spread order of the cost allocation, int_cost_allocation), in proportion to their
--   node-day's accelerator energy, carrying its own carbon and water. A day without any request
--   keeps its energy unshared (unshared_j). Per node-day: shared_j + unshared_j = total_j, and its
--   requests carry shared_j - pooled_out_j + pooled_in_j (fct_request_footprint).
-- Carbon and water: total kWh x the site's factors (ref.site_footprint, the 'default' site for a site
-- the footprint file does not name); the location-based intensity is the hourly profile weighted by
-- the node-day's host energy per UTC hour (the annual factor without host readings).
-- Incremental by UTC day (macros/day_window.sql): every figure of a node-day comes from that day's rows.
{{ day_window_config() }}
with device_day as (
    select * from {{ ref('stg_attribution__device_day') }}
    {% if is_incremental() %} where date {{ day_window_between() }}{% endif %}
),

request_days as (
    select * from {{ source('attribution', 'request_energy') }}
    {% if is_incremental() %} where date {{ day_window_between() }}{% endif %}
),

requests as (
    select request_id, node from {{ ref('stg_raw__requests') }}
),

host as (
    select * from {{ ref('stg_raw__host_samples') }} where is_host_domain
    {% if is_incremental() %} and date {{ day_window_between() }}{% endif %}
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
        arg_max(chip, measured_energy_j) as chip,
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
        l.date, l.node, l.site, l.factor_site, s.pue, a.chip,
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

own as (
    select
        *,
        case when accelerator_j > 0 then (pue - 1) * (accelerator_j + host_shared_j + reserve_shared_j) else 0 end
            as facility_shared_j,
        case when accelerator_j > 0 then pue * (accelerator_j + host_shared_j + reserve_shared_j) else 0 end
            as own_shared_j,
        {{ j_to_kwh('total_j') }} as total_kwh,
        {{ j_to_kwh('total_j') }} * location_g_per_kwh as location_gco2e,
        {{ j_to_kwh('total_j') }} * market_g_per_kwh as market_gco2e,
        {{ j_to_kwh('total_j') }} * onsite_l_per_kwh * 1000 as onsite_water_ml,
        {{ j_to_kwh('total_j') }} * source_l_per_kwh * 1000 as source_water_ml,
        sum(accelerator_j) over (partition by date, chip) as chip_day_accelerator_j,
        sum(accelerator_j) over (partition by date) as fleet_day_accelerator_j,
    from split
),

-- node-days without requests whose whole boundary goes to a pool (chip-day, else fleet-day)
pooled as (
    select
        *,
        {{ var('footprint_share_reserve', true) }} and accelerator_j = 0 and total_j > 0
            and fleet_day_accelerator_j > 0 as is_pooled,
        case when chip_day_accelerator_j > 0 then 'chip_day' else 'fleet_day' end as pool_level,
    from own
),

pools as (
    select
        date, pool_level, case when pool_level = 'chip_day' then chip end as pool_chip,
        sum(total_j - facility_j) as reserve_j, sum(facility_j) as facility_j,
        sum(location_gco2e) as location_gco2e, sum(market_gco2e) as market_gco2e,
        sum(onsite_water_ml) as onsite_water_ml, sum(source_water_ml) as source_water_ml,
    from pooled
    where is_pooled
    group by all
),

-- each node-day with requests receives its accelerator energy's share of its chip-day and fleet-day pools
received_parts as (
    select
        p.date, p.node, q.reserve_j, q.facility_j, q.location_gco2e, q.market_gco2e, q.onsite_water_ml,
        q.source_water_ml,
        p.accelerator_j / case when q.pool_level = 'chip_day' then p.chip_day_accelerator_j
                               else p.fleet_day_accelerator_j end as frac,
    from pooled as p
    inner join pools as q
        on q.date = p.date
        and ((q.pool_level = 'chip_day' and q.pool_chip is not distinct from p.chip) or q.pool_level = 'fleet_day')
    where p.accelerator_j > 0
),

received as (
    select
        date, node,
        sum(frac * reserve_j) as reserve_j, sum(frac * facility_j) as facility_j,
        sum(frac * location_gco2e) as location_gco2e, sum(frac * market_gco2e) as market_gco2e,
        sum(frac * onsite_water_ml) as onsite_water_ml, sum(frac * source_water_ml) as source_water_ml,
    from received_parts
    group by all
),

final as (
    select
        p.date, p.node, p.site, p.chip, p.pue, p.requests, p.devices, p.spare_devices,
        p.device_measured_j, p.accelerator_j, p.host_j, p.reserve_j, p.facility_j, p.total_j,
        p.host_shared_j, p.reserve_shared_j, p.facility_shared_j,
        p.own_shared_j + case when p.is_pooled then p.total_j else 0 end as shared_j,
        p.total_j - p.own_shared_j - case when p.is_pooled then p.total_j else 0 end as unshared_j,
        case when p.is_pooled then p.total_j else 0 end as pooled_out_j,
        case when p.is_pooled then p.pool_level end as pool_level,
        coalesce(r.reserve_j, 0) + coalesce(r.facility_j, 0) as pooled_in_j,
        coalesce(r.reserve_j, 0) as pooled_in_reserve_j,
        coalesce(r.facility_j, 0) as pooled_in_facility_j,
        coalesce(r.location_gco2e, 0) as pooled_in_location_gco2e,
        coalesce(r.market_gco2e, 0) as pooled_in_market_gco2e,
        coalesce(r.onsite_water_ml, 0) as pooled_in_onsite_water_ml,
        r.source_water_ml as pooled_in_source_water_ml,
        p.total_kwh, p.location_g_per_kwh, p.market_g_per_kwh, p.onsite_l_per_kwh, p.source_l_per_kwh,
        p.location_gco2e, p.market_gco2e, p.onsite_water_ml, p.source_water_ml,
    from pooled as p
    left join received as r on r.date = p.date and r.node = p.node
)

select * from final
