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

skew as (
    -- a node whose sample clock was offset from its requests' and corrected before attribution
    select date, 'device_samples' as kind, node,
           'clock skew ' || (case when skew_s >= 0 then '+' else '' end) || printf('%.1f', skew_s)
               || ' s (samples vs requests), corrected' as reason,
           devices as rows
    from {{ ref('stg_attribution__clock_skew') }} where applied
),

final as (
    select * from refused
    union all
    select * from sensors
    union all
    select * from skew
)

select * from final
