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

-- node identity: per node and day, devices that report samples but serve no request, and requests
-- whose replica's devices report no samples (a node the exporter and the request telemetry name
-- differently shows as both)
device_days as (
    select distinct date, device_id, node from {{ ref('stg_attribution__device_day') }}
),

replica_devices as (
    select replica_id, node, unnest(device_ids) as device_id from {{ ref('stg_raw__replicas') }}
),

request_days as (
    select q.date, q.replica_id, coalesce(p.node, q.node) as node, count(*) as requests
    from {{ ref('stg_raw__requests') }} as q
    left join {{ ref('stg_raw__replicas') }} as p on p.replica_id = q.replica_id
    group by all
),

served_devices as (
    select distinct q.date, d.device_id
    from request_days as q join replica_devices as d on d.replica_id = q.replica_id
),

sampled_replica_days as (
    select distinct q.date, q.replica_id
    from request_days as q
    join replica_devices as d on d.replica_id = q.replica_id
    join device_days as dd on dd.date = q.date and dd.device_id = d.device_id
),

unmatched as (
    select dd.date, 'device_samples' as kind, dd.node, 'devices with samples but no requests' as reason,
           count(*) as rows
    from device_days as dd
    anti join served_devices as s on s.date = dd.date and s.device_id = dd.device_id
    group by all
    union all
    select q.date, 'requests', q.node, 'requests whose devices report no samples', sum(q.requests)
    from request_days as q
    anti join sampled_replica_days as s on s.date = q.date and s.replica_id = q.replica_id
    group by all
),

-- server-counter completeness per replica and hour (fct_server_token_completeness): requests the
-- server counted vs the request telemetry, replica-hours whose tokens differ beyond the tolerance,
-- and server counters that map to no replica
server_counts as (
    select date, 'server_counters' as kind, node,
           'requests counted by the server, missing from the request telemetry' as reason,
           sum(missing_requests) as rows
    from {{ ref('fct_server_token_completeness') }} where replica_id is not null
    group by all having sum(missing_requests) > 0
    union all
    select date, 'server_counters', node, 'requests in the request telemetry the server did not count',
           sum(extra_requests)
    from {{ ref('fct_server_token_completeness') }} where replica_id is not null
    group by all having sum(extra_requests) > 0
    union all
    select date, 'server_counters', node, 'replica-hours whose tokens differ from the server counters beyond tolerance',
           count(*)
    from {{ ref('fct_server_token_completeness') }}
    where replica_id is not null and not (prompt_within_tolerance and generation_within_tolerance)
    group by all
    union all
    select date, 'server_counters', node, 'server counter scrapes that map to no replica', sum(scrapes)
    from {{ ref('fct_server_token_completeness') }} where replica_id is null group by all
),

final as (
    select * from refused
    union all
    select * from sensors
    union all
    select * from skew
    union all
    select * from unmatched
    union all
    select * from server_counts
)

select * from final
