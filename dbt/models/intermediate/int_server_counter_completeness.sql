-- Server-counter completeness: what an inference server counted itself (vllm:request_success_total,
-- vllm:prompt_tokens_total, vllm:generation_tokens_total, or sglang:*) against the request telemetry
-- loaded for the same node, model and time, per UTC hour.
-- * The counters are cumulative: each scrape's increase over the series' previous scrape (a counter
--   that went down restarted, and its new value is the increase since the restart). The first scrape
--   of a series has no increase: the window starts there.
-- * A request belongs to the first scrape of its node and model at or after its finish time (ASOF),
--   and to that scrape's hour; requests finished before a series' first scrape or after its last are
--   outside the window. Its node is its replica's (the declared layout), else its own.
-- * A server that gives no model label is matched against every request on its node.
with counters as (
    select * from {{ source('raw', 'server_counters') }}
),

requests as (
    select * from {{ ref('stg_raw__requests') }}
),

replicas as (
    select * from {{ ref('stg_raw__replicas') }}
),

steps as (
    select
        node, url, server, coalesce(model, '') as model_key, ts,
        lag(ts) over w as prev_ts,
        request_success_total - lag(request_success_total) over w as d_requests,
        prompt_tokens_total - lag(prompt_tokens_total) over w as d_prompt,
        generation_tokens_total - lag(generation_tokens_total) over w as d_generation,
        request_success_total, prompt_tokens_total, generation_tokens_total,
    from counters
    window w as (partition by node, url, server, coalesce(model, '') order by ts)
),

increases as (
    select
        node, model_key, ts,
        case when d_requests < 0 then request_success_total else d_requests end as requests,
        case when d_prompt < 0 then prompt_tokens_total else d_prompt end as prompt_tokens,
        case when d_generation < 0 then generation_tokens_total else d_generation end as generation_tokens,
    from steps
    where prev_ts is not null
),

counters_keyed as (
    select distinct node, coalesce(model, '') as model_key, ts from counters
),

series as (
    select node, model_key, min(ts) as first_ts, max(ts) as last_ts from counters_keyed group by all
),

telemetry as (
    select
        r.request_id, coalesce(p.node, r.node) as node, r.replica_id, r.finish_ts,
        r.prompt_tokens, r.completion_tokens,
        case when exists (select 1 from counters_keyed k where k.node = coalesce(p.node, r.node) and k.model_key = '')
             then '' else r.model end as model_key,
    from requests as r
    left join replicas as p on p.replica_id = r.replica_id
),

telemetry_placed as (
    select t.*, k.ts as scrape_ts
    from telemetry as t
    asof join counters_keyed as k on k.node = t.node and k.model_key = t.model_key and t.finish_ts <= k.ts
    join series as s on s.node = t.node and s.model_key = t.model_key
    where t.finish_ts > s.first_ts
),

server_hourly as (
    select node, model_key, date_trunc('hour', timezone('UTC', ts)) as hour_ts, count(*) as scrapes,
           sum(requests) as server_requests, sum(prompt_tokens) as server_prompt_tokens,
           sum(generation_tokens) as server_generation_tokens,
    from increases group by all
),

telemetry_hourly as (
    select node, model_key, date_trunc('hour', timezone('UTC', scrape_ts)) as hour_ts, count(*) as telemetry_requests,
           sum(prompt_tokens) as telemetry_prompt_tokens, sum(completion_tokens) as telemetry_completion_tokens,
           string_agg(distinct replica_id, ', ' order by replica_id) as replica_ids,
    from telemetry_placed group by all
),

final as (
    select
        cast(coalesce(s.hour_ts, t.hour_ts) as date) as date,
        coalesce(s.hour_ts, t.hour_ts) as hour_ts,
        coalesce(s.node, t.node) as node,
        nullif(coalesce(s.model_key, t.model_key), '') as model,
        t.replica_ids,
        coalesce(s.scrapes, 0) as scrapes,
        coalesce(s.server_requests, 0) as server_requests,
        coalesce(t.telemetry_requests, 0) as telemetry_requests,
        greatest(coalesce(s.server_requests, 0) - coalesce(t.telemetry_requests, 0), 0) as missing_requests,
        greatest(coalesce(t.telemetry_requests, 0) - coalesce(s.server_requests, 0), 0) as extra_requests,
        coalesce(s.server_prompt_tokens, 0) as server_prompt_tokens,
        coalesce(t.telemetry_prompt_tokens, 0) as telemetry_prompt_tokens,
        coalesce(s.server_generation_tokens, 0) as server_generation_tokens,
        coalesce(t.telemetry_completion_tokens, 0) as telemetry_completion_tokens,
    from server_hourly as s
    full join telemetry_hourly as t
        on t.node = s.node and t.model_key = s.model_key and t.hour_ts = s.hour_ts
)

select * from final
