-- Per-request energy and cost on two bases (as OpenCost does for GPUs):
--   allocation: the request carries its share (by fully loaded energy) of its replica-day's whole
--               bill: hardware for every hour, energy including idle and unused capacity;
--   usage:      only what it used: its active energy at the site tariff, and the hardware time
--               in proportion to its active energy.
with requests as (
    select * from {{ ref('stg_raw__requests') }}
),

energy as (
    select * from {{ ref('stg_attribution__request_energy') }}
),

replicas as (
    select * from {{ ref('stg_raw__replicas') }}
),

device_days as (
    select * from {{ ref('int_device_day_costed') }}
),

replica_days as (
    select
        replica_id, date,
        sum(total_cost_usd) as total_cost_usd,
        sum(energy_cost_usd) as energy_cost_usd,
        sum(hardware_cost_usd) as hardware_cost_usd,
        sum(measured_energy_j) as measured_energy_j,
        avg(pue) as pue,
        avg(usd_per_kwh) as usd_per_kwh,
    from device_days
    where replica_id is not null
    group by all
),

joined as (
    select
        r.*,
        rep.chip, rep.vendor, rep.device_count,
        coalesce(e.active_energy_j, 0) as active_energy_j,
        coalesce(e.idle_share_j, 0) as idle_share_j,
        coalesce(e.energy_j, 0) as energy_j,
    from requests as r
    left join energy as e using (request_id)
    left join replicas as rep using (replica_id)
),

shares as (
    select
        j.*,
        sum(j.energy_j) over (partition by j.replica_id, j.date) as replica_day_energy_j,
        sum(j.total_tokens) over (partition by j.replica_id, j.date) as replica_day_tokens,
    from joined as j
),

api_prices as (
    select * from {{ source('ref', 'api_prices') }}
),

subscription as (
    select * from {{ source('ref', 'subscription') }}
),

sub_day as (
    select date, sum(total_tokens) as sub_tokens
    from requests where tier = 'subscription' group by date
),

final as (
    select
        s.request_id, s.replica_id, s.node, s.chip, s.vendor, s.model, s.task, s.language, s.tier, s.status,
        s.arrival_ts, s.date, s.prompt_tokens, s.completion_tokens, s.total_tokens, s.ttft_s, s.latency_s,
        s.active_energy_j, s.idle_share_j, s.energy_j, s.energy_j / 3.6e6 as energy_kwh,
        -- allocation basis: share of the replica-day bill
        rd.total_cost_usd * case
            when s.replica_day_energy_j > 0 then s.energy_j / s.replica_day_energy_j
            else s.total_tokens / nullif(s.replica_day_tokens, 0) end as cost_usd,
        rd.energy_cost_usd * case
            when s.replica_day_energy_j > 0 then s.energy_j / s.replica_day_energy_j
            else s.total_tokens / nullif(s.replica_day_tokens, 0) end as energy_cost_usd,
        rd.hardware_cost_usd * case
            when s.replica_day_energy_j > 0 then s.energy_j / s.replica_day_energy_j
            else s.total_tokens / nullif(s.replica_day_tokens, 0) end as hardware_cost_usd,
        -- usage basis: what the request itself used
        s.active_energy_j / 3.6e6 * rd.pue * rd.usd_per_kwh
            + rd.hardware_cost_usd * s.active_energy_j / nullif(rd.measured_energy_j, 0) as usage_cost_usd,
        case s.tier
            when 'api' then (s.prompt_tokens * ap.usd_per_mtok_input + s.completion_tokens * ap.usd_per_mtok_output) / 1e6
            when 'subscription' then sub.monthly_fee_usd * sub.subscribers / 30.0 * s.total_tokens / nullif(sd.sub_tokens, 0)
            else 0.0
        end as revenue_usd,
    from shares as s
    left join replica_days as rd on rd.replica_id = s.replica_id and rd.date = s.date
    left join api_prices as ap on ap.model = s.model
    left join sub_day as sd on sd.date = s.date
    cross join subscription as sub
)

select * from final
