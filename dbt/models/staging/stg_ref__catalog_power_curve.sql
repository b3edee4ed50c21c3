-- the catalog's power-vs-batch curve per serving row, as written by warehouse/catalog_curve.py
with source as (
    select * from {{ source('ref', 'catalog_power_curve') }}
),

final as (
    select chip, model, feature, phase, batch, active_power_w, active_power_per_request_w,
           idle_power_w, rated_power_w, max_batch, source as catalog_source
    from source
)

select * from final
