with source as (
    select * from {{ source('raw', 'replicas') }}
),

latest as (
    select replica_id, arg_max(node, valid_from) as node, arg_max(model, valid_from) as model,
           arg_max(chip, valid_from) as chip, arg_max(device_ids, valid_from) as device_ids,
    from source
    group by replica_id
),

final as (
    select
        replica_id, node, model, chip,
        case
            when chip like 'nvidia-%' then 'nvidia'
            when chip like 'amd-%' then 'amd'
            else 'custom'
        end as vendor,
        device_ids,
        len(device_ids) as device_count,
    from latest
)

select * from final
