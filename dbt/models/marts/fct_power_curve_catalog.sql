-- the catalog's power-vs-batch curve for the (chip, model) pairs the fleet serves, beside the learned
-- one (fct_power_model) on the Energy page
with curve as (
    select * from {{ ref('stg_ref__catalog_power_curve') }}
),

served as (
    select distinct chip, model from {{ ref('stg_raw__replicas') }}
),

final as (
    select c.*
    from curve as c
    inner join served as s on s.chip = c.chip and s.model = c.model
)

select * from final
