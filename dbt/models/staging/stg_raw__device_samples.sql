with source as (
    select * from {{ source('raw', 'device_samples') }}
),

final as (
    select
        ts,
        cast(ts as date) as date,
        date_trunc('hour', ts) as hour_ts,
        node, device_id, chip, vendor, power_w, power_kind, energy_counter_j,
        utilization_pct, memory_used_mib, temperature_c,
    from source
)

select * from final
