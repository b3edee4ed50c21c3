with source as (
    select * from {{ source('attribution', 'device_day') }}
),

final as (
    select
        date, device_id, split_part(device_id, '/', 1) as node, chip,
        case when chip like 'nvidia-%' then 'nvidia' when chip like 'amd-%' then 'amd' else 'custom' end as vendor,
        replica_id,
        measured_energy_j, attributed_active_j, shared_idle_j, unused_j,
        request_side_active_j, request_side_idle_j,
        counter_intervals, integrated_intervals, gap_s, covered_s, counter_resets, idle_w, idle_source,
    from source
)

select * from final
