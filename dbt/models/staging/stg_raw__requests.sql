with source as (
    select * from {{ source('raw', 'requests') }}
),

final as (
    select
        request_id,
        node,
        replica_id,
        model,
        task,
        language,
        tier,
        coalesce(status, 'ok') as status,
        arrival_ts,
        coalesce(scheduled_ts, arrival_ts) as scheduled_ts,
        first_token_ts,
        finish_ts,
        cast(arrival_ts as date) as date,
        prompt_tokens,
        completion_tokens,
        prompt_tokens + completion_tokens as total_tokens,
        epoch_us(first_token_ts - arrival_ts) / 1e6 as ttft_s,
        epoch_us(finish_ts - arrival_ts) / 1e6 as latency_s,
    from source
)

select * from final
