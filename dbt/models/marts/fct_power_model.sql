-- the learned power-vs-batch curve: one row per device, UTC day and feature (prefill, or decode at
-- one batch-size bin), with the bin's batch range and whether the device reached it that day
with pm as (
    select * from {{ ref('stg_attribution__power_model') }}
),

bins as (
    select * from (values
        ('prefill', 0, 0, 0), ('decode_b1', 1, 1, 1), ('decode_b2', 2, 2, 2), ('decode_b3_4', 3, 3, 4),
        ('decode_b5_8', 4, 5, 8), ('decode_b9_16', 5, 9, 16), ('decode_b17_32', 6, 17, 32),
        ('decode_b33_64', 7, 33, 64), ('decode_b65_128', 8, 65, 128), ('decode_b129_plus', 9, 129, null)
    ) as t(feature, feature_order, batch_lo, batch_hi)
),

long as (
    select pm.date, pm.device_id, pm.node, pm.chip, pm.model, pm.replica_id, pm.method, pm.learned,
           b.feature, b.feature_order, b.batch_lo, b.batch_hi,
           case b.feature
               when 'prefill' then pm.prefill_w when 'decode_b1' then pm.decode_b1_w
               when 'decode_b2' then pm.decode_b2_w when 'decode_b3_4' then pm.decode_b3_4_w
               when 'decode_b5_8' then pm.decode_b5_8_w when 'decode_b9_16' then pm.decode_b9_16_w
               when 'decode_b17_32' then pm.decode_b17_32_w when 'decode_b33_64' then pm.decode_b33_64_w
               when 'decode_b65_128' then pm.decode_b65_128_w else pm.decode_b129_plus_w
           end as coefficient,
           b.feature = 'prefill' or b.batch_lo <= pm.max_batch as observed,
           pm.prefill_decode_ratio, pm.r2, pm.intervals_used, pm.max_batch, pm.fallback_reason
    from pm cross join bins b
),

final as (
    select *,
           case when learned then coefficient end as active_power_w,
           case when learned and feature <> 'prefill' then coefficient / batch_lo end as active_power_per_request_w
    from long
)

select * from final
