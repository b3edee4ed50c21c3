-- Tokens the inference server counted itself against the request telemetry, per replica and UTC hour,
-- prompt and generation separately (intermediate.int_server_counter_completeness), with the
-- tolerance a gap is judged by: dbt vars server_prompt_token_tolerance_pct and
-- server_generation_token_tolerance_pct (dbt_project.yml), recorded on every row. A replica-hour is
-- within tolerance when |server - telemetry| <= tolerance% of the server's count (an hour the server
-- counted nothing is within tolerance only when the telemetry has nothing either). Server counters
-- that map to no replica are rows without replica_id, never within tolerance.
with completeness as (
    select * from {{ ref('int_server_counter_completeness') }}
),

judged as (
    select
        *,
        cast({{ var('server_prompt_token_tolerance_pct', 1.0) }} as double) as prompt_tolerance_pct,
        cast({{ var('server_generation_token_tolerance_pct', 1.0) }} as double) as generation_tolerance_pct,
        server_prompt_tokens - telemetry_prompt_tokens as prompt_gap_tokens,
        server_generation_tokens - telemetry_completion_tokens as generation_gap_tokens,
    from completeness
),

final as (
    select
        date, hour_ts, replica_id, node, model, server_models, scrapes,
        server_requests, telemetry_requests, missing_requests, extra_requests,
        server_prompt_tokens, telemetry_prompt_tokens, prompt_gap_tokens,
        case when server_prompt_tokens > 0 then 100.0 * prompt_gap_tokens / server_prompt_tokens end as prompt_gap_pct,
        server_generation_tokens, telemetry_completion_tokens, generation_gap_tokens,
        case when server_generation_tokens > 0 then 100.0 * generation_gap_tokens / server_generation_tokens end
            as generation_gap_pct,
        prompt_tolerance_pct, generation_tolerance_pct,
        replica_id is not null and abs(prompt_gap_tokens) <= prompt_tolerance_pct / 100.0 * server_prompt_tokens
            as prompt_within_tolerance,
        replica_id is not null
            and abs(generation_gap_tokens) <= generation_tolerance_pct / 100.0 * server_generation_tokens
            as generation_within_tolerance,
    from judged
)

select * from final
