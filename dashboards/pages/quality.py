"""quality.html: coverage, unmatched devices and requests, quarantined rows by reason, sampling gaps, counter
resets, clock skew."""
from __future__ import annotations

import altair as alt

from dashboards import theme
from dashboards.pages import coverage, quality_completeness, quality_live, quality_matching, quality_quarantine
from dashboards.pages._core import (Chart, Ctx, Note, Page, Section, no_data,
                                    one_day_axis, safe, span_days, tidy, time_ticks, tt_date, day_x, utc_day)
from dashboards.pages.quality_quarantine import clip as _clip

Q = "raw.quarantine"
DQ = "marts.fct_data_quality_daily"
DEV = "marts.fct_device_energy_daily"
SKEW = "attribution.clock_skew"
#: reasons the dbt mart adds from the attribution (not quarantined rows): their "rows" are counts / seconds
SENSOR_REASONS = ("counter reset (integrated power used)", "sampling gap (seconds)")
#: and the clock-skew corrections it adds ("clock skew +2.5 s (samples vs requests), corrected"; rows = devices)
SKEW_REASON_LIKE = "clock skew %"
#: every mart reason that is not a quarantined row: the sensors', and the unmatched devices / requests and
#: server-counter mismatches (their own section, quality_matching.py)
NOT_QUARANTINE = SENSOR_REASONS + tuple(quality_matching.REASONS)
KIND_COLORS = {"device_samples": theme.OKABE_ITO["orange"], "requests": theme.OKABE_ITO["reddish_purple"],
               "replicas": "#777777", "file": "#333333"}
MAX_DEVICES = 40


def build(ctx: Ctx) -> Page:
    page = Page("quality", "Data quality", "Data quality",
                "What the loader refused and why, where the sensors went quiet, and where energy counters reset. "
                "Refused rows are kept in raw.quarantine with file, row, field and reason; good rows of the same "
                "file still load.")
    page.sections += [safe(ctx, coverage.section, "Coverage"),
                      safe(ctx, quality_matching.section, "Devices, requests and server counters that do not match"),
                      safe(ctx, quality_completeness.section, "Server counters against request telemetry, per replica"),
                      safe(ctx, _quarantine, "Quarantined rows"), safe(ctx, _gaps, "Sampling gaps"),
                      safe(ctx, _resets, "Counter resets"), safe(ctx, _clock_skew, "Clock skew")]
    return page


def _quarantine(ctx: Ctx) -> Section:
    wh = ctx.wh
    sec = Section("Quarantined rows")
    if not wh.exists(Q) and not wh.has(DQ):
        sec.blocks.append(no_data(wh, Q))
        return sec
    ph = ", ".join("?" for _ in NOT_QUARANTINE)
    if wh.exists(Q):
        by = wh.df(f"""select coalesce(kind, 'file') as kind, coalesce(reason, 'unknown') as reason, count(*) as rows,
                              count(distinct file) as files
                       from {Q} group by all order by rows desc""")
    else:
        by = wh.df(f"""select kind, reason, sum(rows) as rows, null::bigint as files from {DQ}
                       where reason not in ({ph}) and reason not like ? group by all order by rows desc""",
                   [*NOT_QUARANTINE, SKEW_REASON_LIKE])
    if by.empty:
        sec.blocks.append(Note("Nothing quarantined: every loaded row passed validation.", "info"))
    else:
        by["label"] = by.kind + ": " + by.reason.map(lambda r: _clip(r, 56))
        kinds = list(dict.fromkeys(by.kind))
        base = alt.Chart(by).encode(
            y=alt.Y("label:N", title=None, sort=by.sort_values("rows", ascending=False).label.tolist(),
                    axis=alt.Axis(labelLimit=340)),
            x=alt.X("rows:Q", title="Quarantined rows (count)"),
            tooltip=[alt.Tooltip("kind:N", title="Record kind"), alt.Tooltip("reason:N", title="Reason"),
                     alt.Tooltip("rows:Q", title="Rows", format=",.0f"),
                     alt.Tooltip("files:Q", title="Files", format=",.0f")])
        ch = alt.layer(
            base.mark_bar(height={"band": 0.7}).encode(
                color=alt.Color("kind:N", title="Record kind", scale=theme.ordinal_scale(KIND_COLORS, kinds),
                                legend=alt.Legend(orient="top"))),
            base.mark_text(align="left", dx=4, fontSize=11).encode(text=alt.Text("rows:Q", format=",.0f")),
        ).properties(title=alt.Title("Quarantined rows by reason", subtitle="Rows refused by the loader, all time"),
                     width=theme.FULL_W - 380, height=max(100, 26 * len(by)))
        sec.blocks.append(Chart("quality-quarantine-reasons", ch, by,
                                "Duplicates are expected after a re-sent file; the rest need a look.", wide=True))

    if wh.has(DQ):
        daily = tidy(wh.df(f"""select strftime(date, '%Y-%m-%d') as date, kind, reason, sum(rows) as rows
                               from {DQ} where reason not in ({ph}) and reason not like ? and date is not null
                               group by all order by date""", [*NOT_QUARANTINE, SKEW_REASON_LIKE]))
        if not daily.empty:
            daily["label"] = daily.kind + ": " + daily.reason.map(lambda r: _clip(r, 56))
            labels = daily.groupby("label")["rows"].sum().sort_values(ascending=False).index.tolist()
            ch = alt.Chart(daily).mark_rect(stroke="#ffffff", strokeWidth=0.5).encode(
                x=alt.X("date:T", title="Date (UTC)", timeUnit="utcyearmonthdate", scale=_day_domain(ctx, daily.date),
                        axis=_day_axis(ctx, daily.date)),
                y=alt.Y("label:N", title=None, sort=labels, axis=alt.Axis(labelLimit=300)),
                color=alt.Color("rows:Q", title="Rows", scale=alt.Scale(scheme=theme.SEQ_COUNT, type="sqrt"),
                                legend=alt.Legend(orient="right")),
                tooltip=[tt_date("date"), alt.Tooltip("kind:N", title="Record kind"),
                         alt.Tooltip("reason:N", title="Reason"), alt.Tooltip("rows:Q", title="Rows", format=",.0f")],
            ).properties(title=alt.Title("Quarantined rows per day, by reason",
                                         subtitle="Date of the loaded file (UTC); darker = more rows"),
                         width=theme.FULL_W - 380, height=max(80, 24 * len(labels)))
            sec.blocks.append(Chart("quality-quarantine-daily", ch, daily, "Days without a cell had no refused rows.",
                                    wide=True))

    if wh.has(Q):  # an empty quarantine already said "Nothing quarantined" above
        sec.blocks.append(quality_quarantine.quarantine_table(ctx))
    return sec


def _day_domain(ctx: Ctx, dates) -> alt.Scale:
    """A UTC time scale over the whole period of the warehouse (whole days), so sparse charts keep the context."""
    lo, hi = ctx.period or (min(dates), max(dates))
    lo, hi = min(lo, min(dates)), max(hi, max(dates))
    return alt.Scale(type="utc", domain=[utc_day(lo), utc_day(hi, 1)])


def _day_axis(ctx: Ctx, dates) -> alt.Axis:
    lo, hi = _period(ctx, dates)
    if lo == hi:  # one day: one label under the middle of the day
        return one_day_axis(lo)
    tc, fmt = time_ticks(max(2.0, span_days(_period(ctx, dates))))
    return alt.Axis(format=fmt, labelAngle=0, tickCount=tc)


def _period(ctx: Ctx, dates) -> tuple[str, str]:
    lo, hi = ctx.period or (min(dates), max(dates))
    return min(lo, min(dates)), max(hi, max(dates))


def _gaps(ctx: Ctx) -> Section:
    wh, pal = ctx.wh, ctx.pal
    sec = Section("Sampling gaps",
                  "Time in a device-day with no power sample (or a sample interval too long to trust). Energy in "
                  "a gap is interpolated from the energy counter where there is one.")
    note = no_data(wh, DEV)
    if note:
        sec.blocks.append(note)
        return sec
    tot = wh.one(f"select coalesce(sum(gap_s), 0), count(distinct device_id) from {DEV}")
    if not tot[0]:
        sec.blocks.append(Note(f"No sampling gaps on any of the {tot[1]} devices.", "info"))
        return sec
    df = tidy(wh.df(f"""
        with top as (select device_id from {DEV} group by device_id having sum(gap_s) > 0
                     order by sum(gap_s) desc limit {MAX_DEVICES})
        select strftime(date, '%Y-%m-%d') as date, device_id, min(chip) as chip, sum(gap_s) / 60 as gap_min
        from {DEV} where device_id in (select device_id from top) and gap_s > 0
        group by all order by device_id, date"""), 4)
    devs = df.groupby("device_id")["gap_min"].sum().sort_values(ascending=False).index.tolist()
    ch = alt.layer(
        alt.Chart(df).mark_circle(opacity=0.85, stroke="#333333", strokeWidth=0.5).encode(
            x=alt.X("date:T", title="Date (UTC)", timeUnit="utcyearmonthdate", scale=_day_domain(ctx, df.date),
                    axis=_day_axis(ctx, df.date)),
            y=alt.Y("device_id:N", title=None, sort=devs),
            size=alt.Size("gap_min:Q", title="Minutes", scale=alt.Scale(range=[40, 700], zero=True),
                          legend=alt.Legend(orient="right")),
            color=pal.chip_color(),
            tooltip=[tt_date("date"), alt.Tooltip("device_id:N", title="Device"), alt.Tooltip("chip:N", title="Chip"),
                     alt.Tooltip("gap_min:Q", title="Gap (minutes)", format=",.1f")]),
        alt.Chart(df).mark_text(dy=-14, fontSize=10, color="#333333").encode(
            x=alt.X("date:T", timeUnit="utcyearmonthdate"), y=alt.Y("device_id:N", sort=devs),
            text=alt.Text("gap_min:Q", format=",.0f")),
    ).properties(title=alt.Title("Sampling gaps per device and day",
                                 subtitle=f"Minutes without samples (circle size and label); devices with any gap, "
                                          f"at most {MAX_DEVICES}"),
                 width=theme.FULL_W - 250, height=max(70, 34 * len(devs)))
    sec.blocks.append(Chart("quality-gaps", ch, df, "Days without a circle had no gap.", wide=True))

    per_chip = tidy(wh.df(f"""select chip, sum(gap_s) / 3600 as gap_h, count(*) * 24 as device_hours,
                                     sum(gap_s) / 3600 / (count(*) * 24) * 100 as gap_pct
                              from {DEV} group by chip"""), 4)
    ch = alt.layer(
        alt.Chart(per_chip).mark_bar(height={"band": 0.6}).encode(
            y=alt.Y("chip:N", title=None, sort=pal.chips), x=alt.X("gap_h:Q", title="Time without samples (hours)"),
            color=pal.chip_color(legend=False),
            tooltip=[alt.Tooltip("chip:N", title="Chip"), alt.Tooltip("gap_h:Q", title="Gap (hours)", format=",.1f"),
                     alt.Tooltip("gap_pct:Q", title="Share of device-hours (%)", format=".2f")]),
        alt.Chart(per_chip).mark_text(align="left", dx=4, fontSize=11).encode(
            y=alt.Y("chip:N", sort=pal.chips), x="gap_h:Q", text=alt.Text("gap_pct:Q", format=".2f")),
    ).properties(title=alt.Title("Sampling gaps by chip", subtitle="Hours; label: share of device-hours (%)"),
                 width=theme.HALF_W - 60, height=max(90, 40 * len(per_chip)))
    sec.blocks.append(Chart("quality-gaps-by-chip", ch, per_chip, "Share of device-hours without samples, per chip."))
    return sec


def _resets(ctx: Ctx) -> Section:
    wh, pal = ctx.wh, ctx.pal
    sec = Section("Counter resets",
                  "An energy counter that goes backwards (driver reload, reboot, or a counter that wraps) cannot be "
                  "differenced over that interval; the attribution integrates power there instead.")
    note = no_data(wh, DEV)
    if note:
        sec.blocks.append(note)
        return sec
    df = tidy(wh.df(f"""
        select device_id, min(chip) as chip, sum(counter_resets) as counter_resets,
               sum(integrated_intervals) as integrated_intervals, sum(counter_intervals) as counter_intervals,
               sum(integrated_intervals) * 100.0 / nullif(sum(integrated_intervals) + sum(counter_intervals), 0)
                   as integrated_pct
        from {DEV} group by device_id having sum(counter_resets) > 0
        order by counter_resets desc limit {MAX_DEVICES}"""), 4)
    table = quality_live.resets_table(ctx)
    if df.empty:
        sec.blocks.append(Note("No energy-counter resets on any device.", "info"))
        sec.blocks.append(table)
        return sec
    df["o"] = df.chip.map(lambda c: pal.chips.index(c) if c in pal.chips else 99)
    devs = df.sort_values(["o", "device_id"]).device_id.tolist()
    base = alt.Chart(df).encode(
        y=alt.Y("device_id:N", title=None, sort=devs),
        x=alt.X("counter_resets:Q", title="Counter resets (count, whole period)"),
        tooltip=[alt.Tooltip("device_id:N", title="Device"), alt.Tooltip("chip:N", title="Chip"),
                 alt.Tooltip("counter_resets:Q", title="Resets", format=",.0f"),
                 alt.Tooltip("integrated_pct:Q", title="Intervals integrated from power (%)", format=".2f")])
    ch = alt.layer(
        base.mark_bar(height={"band": 0.7}).encode(color=pal.chip_color()),
        base.mark_text(align="left", dx=4, fontSize=11).encode(text=alt.Text("counter_resets:Q", format=",.0f")),
    ).properties(title=alt.Title("Energy-counter resets per device", subtitle="Count over the whole period"),
                 width=theme.HALF_W - 40, height=max(90, 22 * len(df)))
    sec.blocks.append(Chart("quality-counter-resets", ch, df,
                            "A 32-bit millijoule counter wraps every 4.29 MJ: several times a day on a busy device."))

    daily = tidy(wh.df(f"""select strftime(date, '%Y-%m-%d') as date, chip, sum(counter_resets) as counter_resets
                           from {DEV} group by all having sum(counter_resets) > 0 order by date, chip"""), 4)
    if not daily.empty:
        ch = alt.Chart(daily).mark_bar().encode(
            x=day_x("date", period=_period(ctx, daily.date)), y=alt.Y("counter_resets:Q", title="Counter resets (count per day)", stack=True),
            color=pal.chip_color(),
            tooltip=[tt_date("date"), alt.Tooltip("chip:N", title="Chip"),
                     alt.Tooltip("counter_resets:Q", title="Resets", format=",.0f")],
        ).properties(title=alt.Title("Counter resets per day, by chip", subtitle="Count per day, stacked"),
                     width=theme.HALF_W, height=theme.HEIGHT - 40)
        sec.blocks.append(Chart("quality-counter-resets-daily", ch, daily,
                                "A steady rate is a wrapping counter; a spike is a reboot or driver reload."))
    sec.blocks.append(table)
    return sec


def _clock_skew(ctx: Ctx) -> Section:
    wh = ctx.wh
    sec = Section("Clock skew",
                  "Per node and day, the attribution estimates how far the device samples' clock is from the "
                  "request log's: the lag at which counter power best correlates with the replicas' activity "
                  "(positive: samples stamped later than the requests). A confident estimate of at least the "
                  "threshold in warehouse/attribution.yaml is corrected before attribution: that node's samples "
                  "are shifted back by the skew for the day.")
    note = no_data(wh, SKEW)
    if note:
        sec.blocks.append(note)
        return sec
    df = wh.df(f"""select strftime(date, '%Y-%m-%d') as date, node, skew_s, correlation, correlation_at_zero,
                          devices, applied
                   from {SKEW} order by date, node""")
    fixed = df[df.applied]
    if fixed.empty:
        sec.blocks.append(Note("No clock skew corrected: every node's samples line up with its requests.", "info"))
    else:
        for node, g in fixed.groupby("node", sort=True):
            days = ", ".join(g.date) if len(g) <= 3 else f"{len(g)} days ({g.date.iloc[0]} to {g.date.iloc[-1]})"
            sec.blocks.append(Note(f"Clock skew detected on node {node}: {g.skew_s.median():+.1f} s "
                                   f"(samples ahead of requests), corrected on {days}.", "info"))
    sec.blocks.append(quality_live.skew_table(ctx))
    return sec
