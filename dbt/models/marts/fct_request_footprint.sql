-- The whole footprint of each request: its accelerator energy (attribution.request_energy) and, in
-- proportion to it, its share of its node-day's host, reserve and facility energy
-- (fct_footprint_node_daily), summed over the UTC days it ran on; carbon and water at its node-day's
-- factors, on the full boundary and on the accelerator-only boundary (accelerator energy alone, no
-- PUE) side by side. Per node-day these shares add up to fct_footprint_node_daily.shared_j.
with request_days as (
    select * from {{ source('attribution', 'request_energy') }}
),

requests as (
    select * from {{ ref('fct_request_energy') }}
),

node_days as (
    select * from {{ ref('fct_footprint_node_daily') }}
),

per_day as (
    select
        rd.request_id,
        rd.energy_j as accelerator_j,
        rd.energy_j / nd.accelerator_j * nd.host_shared_j as host_j,
        rd.energy_j / nd.accelerator_j * nd.reserve_shared_j as reserve_j,
        rd.energy_j / nd.accelerator_j * nd.facility_shared_j as facility_j,
        rd.energy_j / nd.accelerator_j * nd.shared_j as full_j,
        nd.location_g_per_kwh, nd.market_g_per_kwh, nd.onsite_l_per_kwh, nd.source_l_per_kwh,
    from request_days as rd
    inner join requests as r using (request_id)
    inner join node_days as nd on nd.node = r.node and nd.date = rd.date
    where nd.accelerator_j > 0
),

per_request as (
    select
        request_id,
        sum(accelerator_j) as accelerator_j,
        sum(host_j) as host_j,
        sum(reserve_j) as reserve_j,
        sum(facility_j) as facility_j,
        sum(full_j) as full_j,
        sum({{ j_to_kwh('full_j') }} * location_g_per_kwh) as full_location_gco2e,
        sum({{ j_to_kwh('full_j') }} * market_g_per_kwh) as full_market_gco2e,
        sum({{ j_to_kwh('full_j') }} * onsite_l_per_kwh * 1000) as full_water_ml,
        sum({{ j_to_kwh('accelerator_j') }} * location_g_per_kwh) as accelerator_location_gco2e,
        sum({{ j_to_kwh('accelerator_j') }} * market_g_per_kwh) as accelerator_market_gco2e,
        sum({{ j_to_kwh('accelerator_j') }} * onsite_l_per_kwh * 1000) as accelerator_water_ml,
    from per_day
    group by request_id
),

final as (
    select
        r.request_id, r.date, r.node, r.chip, r.model, r.task, r.language, r.tier,
        r.prompt_tokens, r.completion_tokens, r.total_tokens,
        coalesce(p.accelerator_j, 0) as accelerator_j,
        coalesce(p.host_j, 0) as host_j,
        coalesce(p.reserve_j, 0) as reserve_j,
        coalesce(p.facility_j, 0) as facility_j,
        coalesce(p.full_j, 0) as full_j,
        coalesce(p.full_j, 0) / 3600 as full_wh,
        coalesce(p.accelerator_j, 0) / 3600 as accelerator_wh,
        coalesce(p.full_location_gco2e, 0) as full_location_gco2e,
        coalesce(p.full_market_gco2e, 0) as full_market_gco2e,
        coalesce(p.full_water_ml, 0) as full_water_ml,
        coalesce(p.accelerator_location_gco2e, 0) as accelerator_location_gco2e,
        coalesce(p.accelerator_market_gco2e, 0) as accelerator_market_gco2e,
        coalesce(p.accelerator_water_ml, 0) as accelerator_water_ml,
    from requests as r
    left join per_request as p using (request_id)
)

select * from final
