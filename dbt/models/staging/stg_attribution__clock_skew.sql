with source as (
    select * from {{ source('attribution', 'clock_skew') }}
),

final as (
    select
        date, node, skew_s, correlation, correlation_at_zero,
        correlation - correlation_at_zero as correlation_margin, devices, applied
    from source
)

select * from final
