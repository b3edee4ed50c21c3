-- incremental by UTC day: see macros/day_window.sql
{{ day_window_config('cast(hour_ts as date)') }}
select
    hour_ts, node, device_id, chip, vendor,
    avg(power_w) as avg_power_w,
    max(power_w) as max_power_w,
    avg(utilization_pct) as avg_utilization_pct,
    avg(temperature_c) as avg_temperature_c,
    count(*) as samples,
from {{ ref('stg_raw__device_samples') }}
{% if is_incremental() %}
where date {{ day_window_between() }}
{% endif %}
group by all
