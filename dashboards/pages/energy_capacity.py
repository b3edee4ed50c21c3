"""energy.html, "Idle and unused capacity": where the measured device energy went, unused capacity per
day and idle power per chip, all for the selected chip and dates (per-day rows of
marts.fct_device_energy_daily, summed in the browser)."""
from __future__ import annotations

import altair as alt

from dashboards import theme
from dashboards.pages._core import (Chart, Ctx, Live, Section, chip_filter, columns, line_points, no_data, tidy,
                                    tt_date, utc_x)

DEV = "marts.fct_device_energy_daily"
COMPONENTS = (("attributed active", "attributed_active_j"), ("shared idle", "shared_idle_j"),
              ("unused capacity", "unused_j"), ("residual", "residual_j"))


def capacity_section(ctx: Ctx) -> Section:
    wh = ctx.wh
    sec = Section("Idle and unused capacity",
                  "Measured device energy split into what requests used (attributed active), idle time shared "
                  "out to the requests that were running, capacity nobody used, and the residual the "
                  "attribution could not place.")
    note = no_data(wh, DEV)
    if note:
        sec.blocks.append(note)
        return sec
    sec.blocks += [_components(ctx), _unused_daily(ctx), _idle_table(ctx)]
    return sec


def _components(ctx: Ctx) -> Chart:
    wh, pal = ctx.wh, ctx.pal
    values = ", ".join(f"('{name}', {k}, {col})" for k, (name, col) in enumerate(COMPONENTS))  # constants only
    comp = tidy(wh.df(f"""
        select strftime(date, '%Y-%m-%d') as date, chip, c.component, c.k, sum(c.j) / 3.6e6 as kwh,
               sum(measured_energy_j) / 3.6e6 as measured_kwh
        from {DEV}, lateral (values {values}) c(component, k, j)
        group by all order by date, chip, c.k"""), 8)
    base = chip_filter(alt.Chart(comp), date="date").transform_aggregate(
        kwh="sum(kwh)", measured_kwh="sum(measured_kwh)", groupby=["chip", "component", "k"]
    ).transform_calculate(share_pct="datum.kwh / datum.measured_kwh * 100")
    ch = base.mark_bar(height={"band": 0.7}).encode(
        y=alt.Y("chip:N", title=None, sort=pal.chips),
        x=alt.X("kwh:Q", title="Measured device energy (kWh)", stack=True),
        color=alt.Color("component:N", title=None, scale=theme.ordinal_scale(theme.COMPONENT_COLORS, comp.component),
                        legend=alt.Legend(orient="top")),
        order=alt.Order("k:Q"),
        tooltip=[alt.Tooltip("chip:N", title="Chip"), alt.Tooltip("component:N", title="Component"),
                 alt.Tooltip("kwh:Q", title="Energy (kWh)", format=",.2f"),
                 alt.Tooltip("share_pct:Q", title="Share of measured (%)", format=".1f"),
                 alt.Tooltip("measured_kwh:Q", title="Measured (kWh)", format=",.2f")],
    ).properties(title=alt.Title("Where the measured energy went, by chip", subtitle="kWh over the selected dates"),
                 width=theme.HALF_W - 120, height=len(pal.chips) * 46 + 20)
    return Chart("energy-components", ch, comp,
                 "A negative residual (left of zero) means more was attributed than measured.", filter_by="chip")


def _unused_daily(ctx: Ctx) -> Chart:
    wh, pal = ctx.wh, ctx.pal
    daily = tidy(wh.df(f"""select strftime(date, '%Y-%m-%d') as date, chip,
                             sum(unused_j) * 100.0 / nullif(sum(measured_energy_j), 0) as unused_pct,
                             (sum(unused_j) + sum(shared_idle_j)) * 100.0 / nullif(sum(measured_energy_j), 0) as idle_pct
                      from {DEV} group by all order by date, chip"""), 4)
    sel = alt.selection_point(fields=["chip"], bind="legend")
    ch = alt.Chart(daily).mark_line(point=line_points(daily.date, 18)).encode(
        x=utc_x("date", dates=daily.date),
        y=alt.Y("unused_pct:Q", title="Unused capacity (% of measured energy)"),
        color=pal.chip_color(),
        opacity=alt.condition(sel, alt.value(1), alt.value(0.15)),
        tooltip=[tt_date("date"), alt.Tooltip("chip:N", title="Chip"),
                 alt.Tooltip("unused_pct:Q", title="Unused (%)", format=".1f"),
                 alt.Tooltip("idle_pct:Q", title="Unused + shared idle (%)", format=".1f")],
    ).add_params(sel).properties(
        title=alt.Title("Unused capacity per day, by chip",
                        subtitle="Share of measured device energy that no request used; click the legend to highlight"),
        width=theme.HALF_W, height=theme.HEIGHT)
    return Chart("energy-unused-daily", chip_filter(ch, date="date"), daily,
                 "Peaks are quiet days or drained devices.", filter_by="chip")


IDLE_MEASURES = [{"name": "devices", "max": "devices"}, {"name": "idle_w", "ratio": ["idle_w_sum", "idle_n"]},
                 {"name": "avg_power_w", "ratio": ["power_w_sum", "power_n"]}, {"name": "device_days", "sum": "device_days"}]
IDLE_COLUMNS = [{"key": "chip", "label": "Chip", "swatch": True}, {"key": "idle_source", "label": "Idle power from"},
                {"key": "devices", "label": "Devices (most in a day)", "fmt": "num0"},
                {"key": "device_days", "label": "Device-days", "fmt": "num0"},
                {"key": "idle_w", "label": "Idle power (W, mean per device-day)", "fmt": "num0"},
                {"key": "avg_power_w", "label": "Average power (W)", "fmt": "num0"}]


def _idle_table(ctx: Ctx) -> Live:
    wh, pal = ctx.wh, ctx.pal
    daily = wh.df(f"""
        select strftime(date, '%Y-%m-%d') as date, chip, idle_source, count(distinct device_id) as devices,
               count(*) as device_days, sum(idle_w) as idle_w_sum, count(idle_w) as idle_n,
               sum(avg_power_w) as power_w_sum, count(avg_power_w) as power_n
        from {DEV} group by all order by all""")
    return Live("energy-idle", {
        "kind": "table", "data": columns(daily), "dims": ["date"],
        "sums": ["device_days", "idle_w_sum", "idle_n", "power_w_sum", "power_n"], "measures": IDLE_MEASURES,
        "group": ["chip", "idle_source"], "columns": IDLE_COLUMNS, "colors": {c: pal.chip_hex(c) for c in pal.chips},
        "order": {"chip": pal.chips}, "sort": {"col": "chip", "desc": False},
        "caption": "Per chip for the selected dates. Idle power is learned from the device's own quiet periods "
                   "where possible, else taken from the chip catalog."})
