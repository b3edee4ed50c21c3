-- The footprint per UTC day (of arrival), site, chip, model, task and language: sums of
-- fct_request_footprint, and per request and per token on both boundaries.
-- Incremental by UTC day (macros/day_window.sql).
{{ day_window_config() }}
with requests as (
    select r.*, coalesce(ns.site, 'default') as site,
    from {{ ref('fct_request_footprint') }} as r
    left join {{ source('ref', 'node_sites') }} as ns on ns.node = r.node
    {% if is_incremental() %} where r.date {{ day_window_between() }}{% endif %}
),

final as (
    select
        date, site, chip, model, task, language,
        count(*) as requests,
        sum(total_tokens) as total_tokens,
        sum(accelerator_j) as accelerator_j,
        sum(host_j) as host_j,
        sum(reserve_j) as reserve_j,
        sum(facility_j) as facility_j,
        sum(full_j) as full_j,
        sum(full_wh) as full_wh,
        sum(accelerator_wh) as accelerator_wh,
        sum(full_location_gco2e) as full_location_gco2e,
        sum(full_market_gco2e) as full_market_gco2e,
        sum(full_water_ml) as full_water_ml,
        sum(accelerator_location_gco2e) as accelerator_location_gco2e,
        sum(accelerator_market_gco2e) as accelerator_market_gco2e,
        sum(accelerator_water_ml) as accelerator_water_ml,
        sum(full_wh) / count(*) as full_wh_per_request,
        sum(accelerator_wh) / count(*) as accelerator_wh_per_request,
        sum(full_location_gco2e) / count(*) as full_location_gco2e_per_request,
        sum(full_market_gco2e) / count(*) as full_market_gco2e_per_request,
        sum(full_water_ml) / count(*) as full_water_ml_per_request,
        sum(full_wh) / nullif(sum(total_tokens), 0) as full_wh_per_token,
        sum(accelerator_wh) / nullif(sum(total_tokens), 0) as accelerator_wh_per_token,
        sum(full_location_gco2e) / nullif(sum(total_tokens), 0) as full_location_gco2e_per_token,
        sum(full_market_gco2e) / nullif(sum(total_tokens), 0) as full_market_gco2e_per_token,
        sum(full_water_ml) / nullif(sum(total_tokens), 0) as full_water_ml_per_token,
    from requests
    group by all
)

select * from final
