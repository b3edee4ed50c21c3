-- incremental by UTC day: see macros/day_window.sql. The costing is macros/requests_costed.sql
-- (intermediate.int_requests_costed over every day), run over the window's requests only.
-- depends_on: {{ source('attribution', 'request_energy') }}
{{ day_window_config() }}
select
    request_id, replica_id, node, chip, vendor, model, task, language, tier, status,
    arrival_ts, date, prompt_tokens, completion_tokens, total_tokens, ttft_s, latency_s,
    active_energy_j, idle_share_j, energy_j, energy_kwh,
    coalesce(cost_usd, 0) as cost_usd,
    coalesce(usage_cost_usd, 0) as usage_cost_usd,
    coalesce(energy_cost_usd, 0) as energy_cost_usd,
    coalesce(hardware_cost_usd, 0) as hardware_cost_usd,
    coalesce(revenue_usd, 0) as revenue_usd,
    coalesce(prefill_s, 0) as prefill_s,
    coalesce(decode_s, 0) as decode_s,
    coalesce(prefill_device_s, 0) as prefill_device_s,
    coalesce(decode_device_s, 0) as decode_device_s,
    coalesce(prefill_energy_j, 0) as prefill_energy_j,
    coalesce(decode_energy_j, 0) as decode_energy_j,
    coalesce(input_energy_j, 0) as input_energy_j,
    coalesce(output_energy_j, 0) as output_energy_j,
    coalesce(input_cost_usd, 0) as input_cost_usd,
    coalesce(output_cost_usd, 0) as output_cost_usd,
    coalesce(input_usage_cost_usd, 0) as input_usage_cost_usd,
    coalesce(output_usage_cost_usd, 0) as output_usage_cost_usd,
    coalesce(input_revenue_usd, 0) as input_revenue_usd,
    coalesce(output_revenue_usd, 0) as output_revenue_usd,
    coalesce(input_share, 1.0) as input_share,
from ({{ requests_costed(windowed=is_incremental()) }}) as costed
