with source as (
    select * from {{ source('attribution', 'power_model') }}
),

final as (
    select
        date, device_id, split_part(device_id, '/', 1) as node, chip, model, replica_id,
        method, method = 'power_model' as learned,
        prefill_w,
        decode_b1_w, decode_b2_w, decode_b3_4_w, decode_b5_8_w, decode_b9_16_w, decode_b17_32_w,
        decode_b33_64_w, decode_b65_128_w, decode_b129_plus_w,
        prefill_decode_ratio, r2, intervals_used, max_batch, fallback_reason
    from source
)

select * from final
