-- Warns (does not fail the build) where an inference server's own counters and the request telemetry
-- disagree: requests the server counted that the telemetry lacks, or the reverse, per hour, node and
-- model (int_server_counter_completeness; the Data quality page lists them).
{{ config(severity='warn') }}
select date, hour_ts, node, model, replica_ids, server_requests, telemetry_requests, missing_requests, extra_requests
from {{ ref('int_server_counter_completeness') }}
where missing_requests > 0 or extra_requests > 0
