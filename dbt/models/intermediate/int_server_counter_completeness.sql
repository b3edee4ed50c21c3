-- Server-counter completeness per replica and UTC hour: what an inference server counted itself
-- (vllm:request_success_total, vllm:prompt_tokens_total, vllm:generation_tokens_total, or sglang:*)
-- against the request telemetry of the replica the server is.
-- * The server's replica: its series' replica label (server_counters.replica_id: a
--   tokenwatt_replica_id / replica_id target label), else the replica map: among the replicas on the
--   server's node at the scrape (the version valid then), the one whose model is the server's
--   model label, else the only replica on the node. A server that maps to none (or to several)
--   stays without a replica (replica_id null) and is reported as such.
-- * The counters are cumulative: each scrape's increase over the series' previous scrape (a counter
--   that went down restarted, and its new value is the increase since the restart). The first scrape
--   of a series has no increase: the window starts there.
-- * A request belongs to the first scrape of its replica's counters at or after its finish time
--   (ASOF), and to that scrape's hour; requests finished before the replica's first scrape or after
--   its last are outside the window.
with counters as (
    select * from {{ source('raw', 'server_counters') }}
),

requests as (
    select * from {{ ref('stg_raw__requests') }}
),

versions as (
    select replica_id, node, model, valid_from,
           coalesce(lead(valid_from) over (partition by replica_id order by valid_from),
                    timestamptz '9999-12-31 00:00:00+00') as valid_to,
    from {{ source('raw', 'replicas') }}
    where replica_id is not null
),

-- the replica map's candidates for each unlabelled scrape: replicas on the node at the scrape
candidates as (
    select c.node, c.url, c.server, coalesce(c.model, '') as model_key, c.ts, v.replica_id,
           coalesce(v.model = c.model, false) as same_model,
    from (select distinct node, url, server, model, ts from counters where replica_id is null) as c
    join versions as v on v.node = c.node and v.valid_from <= c.ts and c.ts < v.valid_to
),

mapped as (
    select node, url, server, model_key, ts,
           case when count(*) filter (where same_model) = 1 then any_value(replica_id) filter (where same_model)
                when count(*) filter (where same_model) = 0 and count(*) = 1 then any_value(replica_id)
           end as replica_id,
    from candidates group by all
),

labelled as (
    select c.*, coalesce(c.model, '') as model_key, coalesce(c.replica_id, m.replica_id) as replica_key,
    from counters as c
    left join mapped as m
        on c.replica_id is null and m.node = c.node and m.url = c.url and m.server = c.server
       and m.model_key = coalesce(c.model, '') and m.ts = c.ts
),

steps as (
    select
        node, url, server, model_key, replica_key, ts,
        lag(ts) over w as prev_ts,
        request_success_total - lag(request_success_total) over w as d_requests,
        prompt_tokens_total - lag(prompt_tokens_total) over w as d_prompt,
        generation_tokens_total - lag(generation_tokens_total) over w as d_generation,
        request_success_total, prompt_tokens_total, generation_tokens_total,
    from labelled
    window w as (partition by node, url, server, model_key order by ts)
),

increases as (
    select
        node, model_key, replica_key, ts,
        case when d_requests < 0 then request_success_total else d_requests end as requests,
        case when d_prompt < 0 then prompt_tokens_total else d_prompt end as prompt_tokens,
        case when d_generation < 0 then generation_tokens_total else d_generation end as generation_tokens,
    from steps
    where prev_ts is not null
),

scrapes as (
    select distinct replica_key, ts from labelled where replica_key is not null
),

series as (
    select replica_key, min(ts) as first_ts from scrapes group by all
),

-- only the requests of a scraped replica after its first scrape go into the as-of join (the same rows
-- as joining series afterwards): a fleet without server counters sorts no request at all
counted_requests as (
    select r.replica_id, r.prompt_tokens, r.completion_tokens, r.finish_ts
    from requests as r
    join series as s on s.replica_key = r.replica_id
    where r.finish_ts > s.first_ts
),

telemetry_placed as (
    select r.replica_id, r.prompt_tokens, r.completion_tokens, k.ts as scrape_ts
    from counted_requests as r
    asof join scrapes as k on k.replica_key = r.replica_id and r.finish_ts <= k.ts
),

server_hourly as (
    select replica_key, node, date_trunc('hour', timezone('UTC', ts)) as hour_ts,
           string_agg(distinct nullif(model_key, ''), ', ' order by nullif(model_key, '')) as server_models,
           count(*) as scrapes,
           sum(requests) as server_requests, sum(prompt_tokens) as server_prompt_tokens,
           sum(generation_tokens) as server_generation_tokens,
    from increases group by replica_key, node, hour_ts
),

telemetry_hourly as (
    select replica_id, date_trunc('hour', timezone('UTC', scrape_ts)) as hour_ts, count(*) as telemetry_requests,
           sum(prompt_tokens) as telemetry_prompt_tokens, sum(completion_tokens) as telemetry_completion_tokens,
    from telemetry_placed group by all
),

replica_nodes as (
    select replica_id, arg_max(node, valid_from) as node, arg_max(model, valid_from) as model
    from versions group by all
),

final as (
    select
        cast(coalesce(s.hour_ts, t.hour_ts) as date) as date,
        coalesce(s.hour_ts, t.hour_ts) as hour_ts,
        coalesce(s.replica_key, t.replica_id) as replica_id,
        coalesce(s.node, p.node) as node,
        p.model as model,
        s.server_models,
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
    full join telemetry_hourly as t on t.replica_id = s.replica_key and t.hour_ts = s.hour_ts
    left join replica_nodes as p on p.replica_id = coalesce(s.replica_key, t.replica_id)
)

select * from final
