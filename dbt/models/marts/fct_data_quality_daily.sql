with quarantine as (
    select q.kind, q.file, q.field, q.reason, m.date, m.node
    from {{ source('raw', 'quarantine') }} as q
    left join {{ source('raw', 'manifest') }} as m on m.file = q.file
),

refused as (
    select try_cast(date as date) as date, kind, node, reason, count(*) as rows
    from quarantine group by all
),

sensors as (
    select date, 'device_samples' as kind, node, 'counter reset (integrated power used)' as reason,
           sum(counter_resets) as rows
    from {{ ref('stg_attribution__device_day') }} group by all having sum(counter_resets) > 0
    union all
    select date, 'device_samples', node, 'sampling gap (seconds)', round(sum(gap_s))
    from {{ ref('stg_attribution__device_day') }} group by all having sum(gap_s) > 0
),

final as (
    select * from refused
    union all
    select * from sensors
)

select * from final
