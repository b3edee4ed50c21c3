-- Each request's split between its prefill phase (its input tokens) and its decode phase (its
-- output tokens), as the attribution splits a device's energy between the two phases:
--   * a request prefills from scheduled_ts to first_token_ts and decodes from first_token_ts to
--     finish_ts (no decode with one completion token or fewer);
--   * within an interval the attribution gives the prefill phase w_p x (prefill request-seconds)
--     and the decode phase w_d x (decode device-seconds), decode device-seconds being at most the
--     interval's time not spent prefilling; each phase's energy is then shared per request-second
--     of that phase (warehouse/attribution/config.py, weights in ref.chip_costs from attribution.yaml);
--   * here the same prices are averaged over the replica-day: decode device-seconds = min(busy
--     seconds of the replica-day - its prefill request-seconds, its decode request-seconds), so a
--     request's decode weight is w_d x decode_s / (the replica-day's mean decode concurrency).
-- input_share = prefill weight / (prefill + decode weight); a request with neither falls back to its
-- share of tokens. Any split in [0, 1] keeps input + output = the request's figure exactly.
with requests as (
    select request_id, replica_id, date, scheduled_ts, first_token_ts, finish_ts,
           prompt_tokens, completion_tokens, total_tokens
    from {{ ref('stg_raw__requests') }}
),

replicas as (
    select replica_id, chip from {{ ref('stg_raw__replicas') }}
),

chip_costs as (
    select chip, prefill_power_weight, decode_power_weight from {{ source('ref', 'chip_costs') }}
),

spans as (
    select
        r.*,
        greatest(coalesce(epoch_us(r.first_token_ts - r.scheduled_ts) / 1e6, 0), 0) as prefill_s,
        case when r.completion_tokens > 1
             then greatest(coalesce(epoch_us(r.finish_ts - r.first_token_ts) / 1e6, 0), 0)
             else 0 end as decode_s,
        coalesce(c.prefill_power_weight, 1.0) as w_prefill,
        coalesce(c.decode_power_weight, 1.0) as w_decode,
    from requests as r
    left join replicas as rep using (replica_id)
    left join chip_costs as c on c.chip = rep.chip
),

-- the replica-day's busy time: the union of its requests' [scheduled, finish) spans
ordered as (
    select replica_id, date, request_id, scheduled_ts as s, finish_ts as e,
           max(finish_ts) over (partition by replica_id, date order by scheduled_ts, finish_ts, request_id
                                rows between unbounded preceding and 1 preceding) as prev_end,
    from spans
    where replica_id is not null and scheduled_ts is not null and finish_ts > scheduled_ts
),

islands as (
    select *, sum(case when prev_end is null or s > prev_end then 1 else 0 end)
                  over (partition by replica_id, date order by s, e, request_id rows unbounded preceding) as island,
    from ordered
),

busy as (
    select replica_id, date, sum(span_s) as busy_s
    from (select replica_id, date, island, epoch_us(max(e) - min(s)) / 1e6 as span_s
          from islands group by all)
    group by all
),

replica_day as (
    select sp.replica_id, sp.date, sum(sp.prefill_s) as prefill_s, sum(sp.decode_s) as decode_s,
           any_value(b.busy_s) as busy_s
    from spans as sp left join busy as b on b.replica_id = sp.replica_id and b.date = sp.date
    where sp.replica_id is not null
    group by all
),

weighted as (
    select
        sp.*,
        -- decode device-seconds per decode request-second (1 / mean decode concurrency)
        case when rd.decode_s > 0
             then least(greatest(coalesce(rd.busy_s, 0) - rd.prefill_s, 0), rd.decode_s) / rd.decode_s
             else 0 end as decode_device_per_s,
    from spans as sp
    left join replica_day as rd on rd.replica_id = sp.replica_id and rd.date = sp.date
),

final as (
    select
        request_id,
        prefill_s,
        decode_s,
        decode_s * decode_device_per_s as decode_device_s,
        case
            when w_prefill * prefill_s + w_decode * decode_s * decode_device_per_s > 0
                then w_prefill * prefill_s
                     / (w_prefill * prefill_s + w_decode * decode_s * decode_device_per_s)
            when total_tokens > 0 then prompt_tokens / total_tokens
            else 1.0
        end as input_share,
    from weighted
)

select * from final
