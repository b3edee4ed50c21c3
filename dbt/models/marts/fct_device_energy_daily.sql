-- incremental by UTC day: see macros/day_window.sql
{{ day_window_config() }}
with device_days as (
    select * from {{ ref('int_device_day_costed') }}
    {% if is_incremental() %}
    where date {{ day_window_between() }}
    {% endif %}
),

final as (
    select
        date, node, device_id, chip, vendor, replica_id,
        measured_energy_j,
        attributed_active_j,
        shared_idle_j,
        unused_j,
        attributed_active_j + shared_idle_j as attributed_j,
        measured_energy_j - (attributed_active_j + shared_idle_j + unused_j) as residual_j,
        request_side_active_j,
        request_side_idle_j,
        counter_intervals, integrated_intervals, gap_s, covered_s, counter_resets,
        idle_w, idle_source,
        measured_energy_j / nullif(covered_s, 0) as avg_power_w,
        measured_energy_kwh, energy_cost_usd, hardware_cost_usd, total_cost_usd, pue, site,
    from device_days
)

select * from final
