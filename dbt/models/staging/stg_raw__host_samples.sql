-- One row per host energy reading, with its joules: the collector's energy since its previous
-- reading (RAPL counter wraps already added back), or, for a source that reports only power, the
-- power times the time since the previous reading of the same domain (at most 300 s: a longer gap
-- is a gap, not made-up energy). A reading's energy is that of the interval ending at ts, so its day
-- and hour are those of the instant just before ts (a reading at midnight closes the previous day).
with source as (
    select * from {{ source('raw', 'host_samples') }}
),

final as (
    select
        node,
        domain,
        ts,
        cast(timezone('UTC', ts - interval 1 microsecond) as date) as date,
        hour(timezone('UTC', ts - interval 1 microsecond)) as hour,
        source,
        energy_delta_j,
        power_w,
        coalesce(
            energy_delta_j,
            power_w * least(epoch_us(ts - lag(ts) over (partition by node, domain order by ts)) / 1e6, 300)
        ) as energy_j,
        domain like 'package-%' or domain like 'dram-%' as is_host_domain,
    from source
)

select * from final
