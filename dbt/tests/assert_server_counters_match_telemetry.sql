-- Warns (does not fail the build) where an inference server's own counters and the request telemetry
-- disagree per replica and hour beyond the tolerance (prompt or generation tokens;
-- marts.fct_server_token_completeness, tolerance in dbt_project.yml vars), or where requests differ, or
-- where a server's counters map to no replica. The Data quality page lists them.
{{ config(severity='warn') }}
select date, hour_ts, replica_id, node, server_requests, telemetry_requests,
       server_prompt_tokens, telemetry_prompt_tokens, server_generation_tokens, telemetry_completion_tokens
from {{ ref('fct_server_token_completeness') }}
where not prompt_within_tolerance or not generation_within_tolerance or missing_requests > 0 or extra_requests > 0
