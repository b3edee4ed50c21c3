-- incremental by UTC day: see macros/day_window.sql
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
from {{ ref('int_requests_costed') }}
{% if is_incremental() %}
where date {{ day_window_between() }}
{% endif %}
