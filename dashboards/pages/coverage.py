"""The coverage heatmap on quality.html: the share of each device-day with power samples, drawn on a
clean fleet too (all green is an answer), from marts.fct_device_energy_daily."""
from __future__ import annotations

import altair as alt

from dashboards import theme
from dashboards.pages._core import Chart, Ctx, Note, Section, chip_filter, day_x, no_data, tidy, tt_date

DEV = "marts.fct_device_energy_daily"
#: at most this many devices in the heatmap (the ones with the least coverage first)
MAX_DEVICES = 120
#: coverage in steps, so that a 20-minute gap (98.6 %) does not look like a full day on a 0-100 gradient:
#: (label, lowest coverage %) from the whole day down, viridis from yellow to dark
BANDS = (("the whole day", 99.999), ("99 to 100 %", 99), ("90 to 99 %", 90), ("50 to 90 %", 50), ("under 50 %", None))
COLORS = ("#fde725", "#5ec962", "#21918c", "#3b528b", "#440154")


def band(pct: float) -> str:
    """The coverage band of a device-day's coverage (%)."""
    return next(name for name, lo in BANDS if lo is None or pct >= lo)


def section(ctx: Ctx) -> Section:
    wh = ctx.wh
    sec = Section("Coverage", "Share of each device-day covered by power samples: 100 % is a full day of "
                  "samples, a day with no row at all counts as 0 %. Gaps are time without a sample (or with a "
                  "sample interval too long to trust).")
    note = no_data(wh, DEV)
    if note:
        sec.blocks.append(note)
        return sec
    df = tidy(wh.df(f"""
        with dev as (select device_id, min(chip) as chip, min(node) as node from {DEV} group by device_id),
        days as (select unnest(generate_series(min(date), max(date), interval 1 day))::date as date from {DEV}),
        cov as (select date, device_id, greatest(0, least(100, 100 * (1 - coalesce(sum(gap_s), 0) / 86400)))
                           as coverage_pct, sum(gap_s) / 60 as gap_min
                from {DEV} group by all),
        grid as (select strftime(days.date, '%Y-%m-%d') as date, dev.device_id, dev.chip, dev.node,
                        coalesce(cov.coverage_pct, 0) as coverage_pct, coalesce(cov.gap_min, 1440) as gap_min,
                        cov.device_id is not null as reported
                 from dev cross join days left join cov using (date, device_id)),
        worst as (select device_id from grid group by device_id order by min(coverage_pct), device_id
                  limit {MAX_DEVICES})
        select * from grid where device_id in (select device_id from worst) order by chip, device_id, date"""), 4)
    df["coverage_band"] = df.coverage_pct.map(band)
    n_dev = wh.one(f"select count(distinct device_id) from {DEV}")[0]
    order = df.drop_duplicates("device_id").device_id.tolist()
    ch = alt.Chart(df).mark_rect(stroke="#ffffff", strokeWidth=0.5).encode(
        x=day_x("date", dates=df.date, period=ctx.period),
        y=alt.Y("device_id:N", title=None, sort=order, axis=alt.Axis(labelLimit=220,
                                                                  labelFontSize=11 if len(order) <= 40 else 8)),
        color=alt.Color("coverage_band:N", title="Coverage",
                        scale=alt.Scale(domain=[n for n, _ in BANDS], range=list(COLORS)),
                        legend=alt.Legend(orient="right", symbolType="square", symbolSize=160)),
        tooltip=[tt_date("date"), alt.Tooltip("device_id:N", title="Device"), alt.Tooltip("chip:N", title="Chip"),
                 alt.Tooltip("node:N", title="Node"), alt.Tooltip("coverage_pct:Q", title="Coverage (%)", format=".1f"),
                 alt.Tooltip("gap_min:Q", title="Without samples (minutes)", format=",.0f"),
                 alt.Tooltip("reported:N", title="Device reported that day")],
    ).properties(title=alt.Title("Sample coverage per device and day",
                                 subtitle="Share of the day with power samples (%); yellow = the whole day, green = short gaps"),
                 width=theme.FULL_W - 260, height=max(60, min(16 * len(order), 640)))
    sec.blocks.append(Chart("quality-coverage", chip_filter(ch, date="date"), df,
                            "Devices sorted by chip; any colour but yellow is a day with missing samples.", wide=True,
                            filter_by="chip", image="png" if len(df) > 3000 else "svg"))
    full = float((df.coverage_pct >= 99.999).mean() * 100) if len(df) else 0.0
    shown = "" if n_dev <= MAX_DEVICES else f" (the {MAX_DEVICES} least covered of {n_dev} devices shown)"
    sec.blocks.append(Note(f"{full:.1f} % of device-days have full sample coverage{shown}.", "info"))
    return sec
