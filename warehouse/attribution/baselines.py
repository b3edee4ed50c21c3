"""Honest baselines: what people write by hand to split a fleet's energy among requests.

All three work from the same raw samples and requests as tokenwatt, and from its learned idle
baseline per device-day (``attribution.device_day.idle_w``), so the comparison is about the split:

* ``replica_hour_duration``: each replica-hour's energy split by each request's seconds present
  in that hour (the analyst's SQL one-liner);
* ``replica_hour_tokens``: the same pool split by each request's tokens (spread evenly over its
  duration when it spans hours);
* ``interval_time_present``: per sample interval, split by each request's time present in it
  (the Kepler-style utilisation share).

Interval energy is the counter delta where it is sound, else power x seconds. The pools are the
intervals during which some request ran (energy of intervals with no request is unused capacity,
as in tokenwatt), total and active (above ``idle_w``) alike. Each builds a temp table
``_bl_<name> (request_id, energy_j, active_energy_j)``.
"""
from __future__ import annotations

NAMES = ("replica_hour_duration", "replica_hour_tokens", "interval_time_present")

_SETUP = """
create or replace temp table _bl_iv as
with dev as (
    select distinct replica_id, unnest(device_ids) as device_id from raw.replicas
),
s as (
    select device_id, epoch_us(ts) / 1e6 as t0, power_w, energy_counter_j,
           lead(epoch_us(ts) / 1e6) over w as t1, lead(energy_counter_j) over w as c1, lead(power_w) over w as p1
    from raw.device_samples window w as (partition by device_id order by ts)
),
iv as (
    select device_id, t0, t1,
           case when c1 - energy_counter_j >= 0 then c1 - energy_counter_j
                else coalesce((power_w + p1) / 2, power_w, p1, 0) * (t1 - t0) end as e_j
    from s where t1 > t0
),
idle as (select device_id, date, idle_w from attribution.device_day)
select dev.replica_id, iv.device_id, iv.t0, iv.t1, iv.e_j,
       greatest(iv.e_j - coalesce(idle.idle_w, 0) * (iv.t1 - iv.t0), 0) as a_j
from iv join dev using (device_id)
left join idle on idle.device_id = iv.device_id and idle.date = cast(to_timestamp(iv.t0) as date);

create or replace temp table _bl_rq as
select request_id, replica_id, epoch_us(coalesce(scheduled_ts, arrival_ts)) / 1e6 as s,
       greatest(epoch_us(finish_ts) / 1e6, epoch_us(coalesce(scheduled_ts, arrival_ts)) / 1e6 + 1e-3) as e,
       (prompt_tokens + completion_tokens)::double as tokens
from raw.requests;

create or replace temp table _bl_ov as
-- the overlap join as an equi-join on (replica, time bucket): each request and each interval is
-- listed in every bucket it touches, and a pair is kept only in the bucket where its overlap
-- starts, so it is counted once (the bucket is two sampling intervals wide)
with width as (select greatest(2 * coalesce(median(t1 - t0), 1), 1e-3) as w from _bl_iv),
rb as (select r.*, unnest(range(floor(r.s / w)::bigint, floor(r.e / w)::bigint + 1)) as b
       from _bl_rq r, width),
ib as (select i.*, unnest(range(floor(i.t0 / w)::bigint, floor(i.t1 / w)::bigint + 1)) as b
       from _bl_iv i, width)
select r.request_id, i.replica_id, i.device_id, i.t0, i.e_j, i.a_j,
       least(r.e, i.t1) - greatest(r.s, i.t0) as ov_s, r.tokens / (r.e - r.s) as tokens_per_s,
       floor(i.t0 / 3600) as hour
from ib i join rb r on r.replica_id = i.replica_id and r.b = i.b, width
where r.s < i.t1 and r.e > i.t0 and i.b = floor(greatest(r.s, i.t0) / width.w)::bigint;
"""

_INTERVAL = """
create or replace temp table _bl_interval_time_present as
select request_id, sum(e_j * ov_s / tot) as energy_j, sum(a_j * ov_s / tot) as active_energy_j
from (select *, sum(ov_s) over (partition by device_id, t0) as tot from _bl_ov) where tot > 0
group by 1
"""

_HOUR = """
create or replace temp table _bl_replica_hour_{name} as
with pool as (  -- energy of the replica-hour's intervals during which a request ran
    select replica_id, hour, sum(e_j) as e_j, sum(a_j) as a_j
    from (select distinct replica_id, device_id, t0, hour, e_j, a_j from _bl_ov) group by all
),
w as (select request_id, replica_id, hour, sum({weight}) as w from _bl_ov group by all),
share as (select *, w / sum(w) over (partition by replica_id, hour) as f from w)
select request_id, sum(f * pool.e_j) as energy_j, sum(f * pool.a_j) as active_energy_j
from share join pool using (replica_id, hour) group by 1
"""


def build_baselines(con) -> None:
    """The three baselines' temp tables on a connection with raw and attribution loaded."""
    for stmt in _SETUP.split(";"):
        if stmt.strip():
            con.execute(stmt)
    con.execute(_INTERVAL)
    # seconds present per device are counted once per device of the replica: the weights only
    # matter relative to each other within the replica-hour
    con.execute(_HOUR.format(name="duration", weight="ov_s"))
    con.execute(_HOUR.format(name="tokens", weight="ov_s * tokens_per_s"))
