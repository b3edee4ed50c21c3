-- The whole footprint of each request: its accelerator energy (attribution.request_energy) and, in
-- proportion to it, its share of its node-day's host, reserve and facility energy and of the pools
-- of node-days without requests it received (fct_footprint_node_daily: shared_j + pooled_in_j),
-- summed over the UTC days it ran on; carbon and water at its node-day's factors (a pooled part at
-- those of the node-day it came from), on the full boundary and on the accelerator-only boundary
-- (accelerator energy alone, no PUE) side by side. Per node-day these shares add up to
-- fct_footprint_node_daily.shared_j + pooled_in_j.
-- Incremental by UTC day of arrival (macros/day_window.sql).
{{ day_window_config() }}
with request_days as (
    select * from {{ source('attribution', 'request_energy') }}
    -- the days the window's requests ran on (macros/day_window.sql)
    {% if is_incremental() %} where date {{ day_window_run_days() }}{% endif %}
),

requests as (
    select * from {{ ref('fct_request_energy') }}
    {% if is_incremental() %} where date {{ day_window_between() }}{% endif %}
),

node_days as (
    select * from {{ ref('fct_footprint_node_daily') }}
    {% if is_incremental() %} where date {{ day_window_run_days() }}{% endif %}
),

per_day as (
    select
        rd.request_id,
        rd.energy_j as accelerator_j,
        rd.energy_j / nd.accelerator_j as frac,
        nd.host_shared_j, nd.reserve_shared_j + nd.pooled_in_reserve_j as reserve_shared_j,
        nd.facility_shared_j + nd.pooled_in_facility_j as facility_shared_j,
        nd.shared_j + nd.pooled_in_j as shared_j,
        {{ j_to_kwh('nd.shared_j') }} * nd.location_g_per_kwh + nd.pooled_in_location_gco2e as location_gco2e,
        {{ j_to_kwh('nd.shared_j') }} * nd.market_g_per_kwh + nd.pooled_in_market_gco2e as market_gco2e,
        {{ j_to_kwh('nd.shared_j') }} * nd.onsite_l_per_kwh * 1000 + nd.pooled_in_onsite_water_ml as water_ml,
        nd.location_g_per_kwh, nd.market_g_per_kwh, nd.onsite_l_per_kwh,
    from request_days as rd
    inner join requests as r using (request_id)
    inner join node_days as nd on nd.node = r.node and nd.date = rd.date
    where nd.accelerator_j > 0
),

per_request as (
    select
        request_id,
        sum(accelerator_j) as accelerator_j,
        sum(frac * host_shared_j) as host_j,
        sum(frac * reserve_shared_j) as reserve_j,
        sum(frac * facility_shared_j) as facility_j,
        sum(frac * shared_j) as full_j,
        sum(frac * location_gco2e) as full_location_gco2e,
        sum(frac * market_gco2e) as full_market_gco2e,
        sum(frac * water_ml) as full_water_ml,
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
        coalesce(p.full_j, 0) / nullif(r.total_tokens, 0) as full_j_per_token,
        coalesce(p.accelerator_j, 0) / nullif(r.total_tokens, 0) as accelerator_j_per_token,
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
