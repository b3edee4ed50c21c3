"""fleet.html: power and utilisation per device over time, power against utilisation."""
from __future__ import annotations

import math

import altair as alt
import pandas as pd

from dashboards import theme
from dashboards.pages._core import (SIG_CHIP, SIG_FROM, SIG_TO, Chart, Ctx, Live, Note, Page, Section, chip_filter,
                                    columns, day_x, no_data, safe, tidy, time_ticks, tt_date)

HOURLY = "marts.fct_device_power_hourly"
#: at most this many cells per heatmap (devices x time buckets): keeps the page light
MAX_CELLS = 4000
MAX_DEVICES = 120
BUCKETS_H = (1, 2, 3, 4, 6, 8, 12, 24)


def build(ctx: Ctx) -> Page:
    page = Page("fleet", "Fleet", "Fleet power and utilisation",
                "Every device, hour by hour: how much power it drew and how busy it was, and how power follows "
                "utilisation on each chip.")
    page.sections += [safe(ctx, _heatmaps, "Power and utilisation per device"),
                      safe(ctx, _curves, "Power against utilisation")]
    return page


def _bucket_hours(n_devices: int, n_hours: int) -> int:
    for b in BUCKETS_H:
        if n_devices * math.ceil(n_hours / b) <= MAX_CELLS:
            return b
    return BUCKETS_H[-1]


def _heatmaps(ctx: Ctx) -> Section:
    wh, pal = ctx.wh, ctx.pal
    sec = Section("Power and utilisation per device")
    note = no_data(wh, HOURLY)
    if note:
        sec.blocks.append(note)
        return sec
    n_dev, n_hours = wh.one(f"""select count(distinct device_id),
                                       date_diff('hour', min(hour_ts), max(hour_ts)) + 1 from {HOURLY}""")
    bh = _bucket_hours(n_dev, n_hours)
    shown, n_all = _shown_devices(wh, pal)
    if len(shown) < n_all:
        sec.blocks.append(Note(f"Showing the {MAX_DEVICES} devices with the highest average power of {n_all}; "
                               "the CSV has the same devices.", "info"))
    order = shown.device_id.tolist()
    cells = tidy(wh.df(f"""
        select device_id, epoch_ms(time_bucket(interval '{bh} hours', hour_ts)) as t,
               avg(avg_power_w) as avg_power_w, max(max_power_w) as max_power_w,
               avg(avg_utilization_pct) as avg_utilization_pct
        from {HOURLY} where device_id in (select unnest(?::varchar[]))
        group by all order by device_id, t""", [order]), 3)
    csv = cells.merge(shown[["device_id", "chip", "node"]], on="device_id")
    csv.insert(1, "bucket_start_utc", pd.to_datetime(csv.t, unit="ms", utc=True).dt.strftime("%Y-%m-%dT%H:%MZ"))
    csv = csv.drop(columns=["t"])
    grid = _HeatGrid(pal, cells.rename(columns={"device_id": "d", "avg_power_w": "p", "max_power_w": "m",
                                                "avg_utilization_pct": "u"}),
                     shown[["device_id", "chip"]].rename(columns={"device_id": "d"}), order, bh, n_hours)
    p = grid.heat("p", "Average power per device (W)", theme.SEQ_POWER, "W")
    u = grid.heat("u", "Average utilisation per device (%)", theme.SEQ_UTIL, "%", domain=[0, 100])
    both = alt.vconcat(p, u, spacing=28).resolve_scale(color="independent").properties(
        title=alt.Title("Power and utilisation per device over time",
                        subtitle=f"The selected dates (data from {ctx.period[0]} to {ctx.period[1]}, UTC), devices "
                                 "grouped by chip" if ctx.period else "", fontSize=16))
    sec.blocks.append(Chart("fleet-heatmaps", both, csv,
                            "Power: dark = low. Utilisation as the vendor reports it. White = hours without samples.",
                            wide=True, filter_by="chip", image="png"))

    sec.blocks.append(_device_table(wh, pal, order))
    return sec


def _shown_devices(wh, pal) -> tuple[pd.DataFrame, int]:
    """The devices drawn (device_id, chip, node), grouped by chip, and how many there are in all: past
    MAX_DEVICES, the busiest by average power."""
    devices = wh.df(f"""select device_id, min(chip) as chip, min(node) as node, avg(avg_power_w) as avg_power_w
                        from {HOURLY} group by device_id""")
    devices["o"] = devices.chip.map(lambda c: pal.chips.index(c) if c in pal.chips else 99)
    devices = devices.sort_values(["o", "node", "device_id"]).reset_index(drop=True)
    if len(devices) <= MAX_DEVICES:
        return devices, len(devices)
    top = devices.sort_values("avg_power_w", ascending=False).head(MAX_DEVICES)
    return top.sort_values(["o", "node", "device_id"]), len(devices)


class _HeatGrid:
    """One device x time heatmap (with a chip-colour strip) per measure, over the compact cells."""

    def __init__(self, pal, compact: pd.DataFrame, dev_small: pd.DataFrame, order: list[str], bh: int,
                 n_hours: int) -> None:
        self.pal, self.compact, self.dev_small, self.order, self.bh = pal, compact, dev_small, order, bh
        self.height = max(160, min(18 * len(order), 560))
        self.tcount, self.tfmt = time_ticks(n_hours / 24)
        if isinstance(self.tcount, dict) and self.tcount.get("interval") == "day":
            # the date range narrows the axis: a tick every day, labels that would touch are dropped
            self.tcount = {"interval": "day", "step": 1}

    def heat(self, field: str, title: str, scheme: str, legend_title: str, domain=None):
        order, height, bh = self.order, self.height, self.bh
        y = alt.Y("d:N", title=None, sort=order, axis=alt.Axis(labelFontSize=11 if len(order) <= 40 else 8,
                                                               labels=len(order) <= 60, ticks=False))
        tip = [alt.Tooltip("d:N", title="Device"), alt.Tooltip("chip:N", title="Chip"),
               tt_date("t", "From (UTC)", "%Y-%m-%d %H:%M", "utcyearmonthdatehoursminutes"),
               alt.Tooltip("p:Q", title="Average power (W)", format=",.0f"),
               alt.Tooltip("m:Q", title="Peak power (W)", format=",.0f"),
               alt.Tooltip("u:Q", title="Utilisation (%)", format=".1f")]
        base = alt.Chart(self.compact).transform_lookup(
            lookup="d", from_=alt.LookupData(self.dev_small, "d", ["chip"])
        ).transform_filter(f"({SIG_CHIP} == 'all' || datum.chip == {SIG_CHIP}) && "
                           f"utcFormat(datum.t, '%Y-%m-%d') >= {SIG_FROM} && utcFormat(datum.t, '%Y-%m-%d') <= {SIG_TO}"
        ).transform_calculate(t2=f"datum.t + {bh * 3600 * 1000}")
        strip = base.mark_rect().encode(
            y=y, color=self.pal.chip_color(legend=False),
            tooltip=[alt.Tooltip("d:N", title="Device"), alt.Tooltip("chip:N", title="Chip")],
        ).transform_aggregate(n="count()", groupby=["d", "chip"]).properties(width=10, height=height)
        grid = base.mark_rect().encode(
            x=alt.X("t:T", title="Time (UTC)", scale=alt.Scale(type="utc"),
                    axis=alt.Axis(format=self.tfmt, labelAngle=0, tickCount=self.tcount, labelOverlap="greedy")),
            x2="t2:T",
            y=alt.Y("d:N", title=None, sort=order, axis=None),
            color=alt.Color(f"{field}:Q", title=legend_title,
                            scale=alt.Scale(scheme=scheme, **({"domain": domain} if domain else {})),
                            legend=alt.Legend(orient="right", gradientLength=min(height, 200))),
            tooltip=tip,
        ).properties(width=theme.FULL_W - 150, height=height)
        return alt.hconcat(strip, grid, spacing=3).resolve_scale(color="independent").properties(
            title=alt.Title(title, subtitle=f"{bh}-hour buckets; the thin strip on the left is the chip colour"
                                             if bh > 1 else "hourly; the thin strip on the left is the chip colour"))


DEVICE_MEASURES = [
    {"name": "avg_w", "ratio": ["power_w_hours", "power_hours"]}, {"name": "max_w", "max": "max_w"},
    {"name": "util", "ratio": ["util_pct_hours", "util_hours"]}, {"name": "hours", "sum": "hours"}]
DEVICE_COLUMNS = [
    {"key": "device_id", "label": "Device"}, {"key": "chip", "label": "Chip", "swatch": True},
    {"key": "avg_w", "label": "Average power (W)", "fmt": "num0"}, {"key": "max_w", "label": "Peak power (W)",
                                                                   "fmt": "num0"},
    {"key": "util", "label": "Utilisation (%)", "fmt": "num1"}, {"key": "hours", "label": "Hours with data",
                                                                 "fmt": "num0"}]


def _device_table(wh, pal, order: list[str]) -> Live:
    """The per-device summary under the heatmaps, in the heatmaps' device order, for the selected chip
    and dates (per-day sums of the hourly mart, added up in the browser)."""
    daily = wh.df(f"""
        select strftime(cast(hour_ts as date), '%Y-%m-%d') as date, device_id, min(chip) as chip,
               sum(avg_power_w) as power_w_hours, count(avg_power_w) as power_hours,
               max(max_power_w) as max_w, sum(avg_utilization_pct) as util_pct_hours,
               count(avg_utilization_pct) as util_hours, count(*) as hours
        from {HOURLY} where device_id in (select unnest(?::varchar[])) group by all order by all""", [order])
    return Live("fleet-devices", {
        "kind": "table", "data": columns(daily), "dims": ["date"],
        "sums": ["power_w_hours", "power_hours", "util_pct_hours", "util_hours", "hours"],
        "measures": DEVICE_MEASURES, "group": ["device_id", "chip"], "columns": DEVICE_COLUMNS,
        "sortable": True, "scroll": True, "order": {"device_id": order}, "sort": {"col": "device_id", "desc": False},
        "csv": "fleet-devices.csv", "colors": {c: pal.chip_hex(c) for c in pal.chips},
        "caption": "Per device for the selected chip and dates: average and peak of the hourly power, average "
                   "utilisation as the vendor reports it, hours with samples."})


def _curves(ctx: Ctx) -> Section:
    wh, pal = ctx.wh, ctx.pal
    sec = Section("Power against utilisation",
                  "Each device-hour is placed in a 5 % utilisation bin; the line is the mean power of the bin and "
                  "the band spans the 10th to 90th percentile.")
    note = no_data(wh, HOURLY)
    if note:
        sec.blocks.append(note)
        return sec
    df = tidy(wh.df(f"""
        select chip, least(floor(avg_utilization_pct / 5) * 5, 95) + 2.5 as util_pct, count(*) as device_hours,
               avg(avg_power_w) as power_w, quantile_cont(avg_power_w, 0.1) as p10_w,
               quantile_cont(avg_power_w, 0.9) as p90_w
        from {HOURLY} where avg_utilization_pct is not null and avg_power_w is not null
        group by all order by chip, util_pct"""), 4)
    sel = alt.selection_point(fields=["chip"], bind="legend")
    base = alt.Chart(df).encode(
        x=alt.X("util_pct:Q", title="Utilisation (%)", scale=alt.Scale(domain=[0, 100])),
        color=pal.chip_color(),
        opacity=alt.condition(sel, alt.value(1), alt.value(0.12)))
    ch = alt.layer(
        base.mark_area(opacity=0.18).encode(y=alt.Y("p10_w:Q", title="Average power (W)"), y2="p90_w:Q",
                                            opacity=alt.condition(sel, alt.value(0.2), alt.value(0.03))),
        base.mark_line(point=alt.OverlayMarkDef(size=20)).encode(
            y="power_w:Q",
            tooltip=[alt.Tooltip("chip:N", title="Chip"), alt.Tooltip("util_pct:Q", title="Utilisation bin centre (%)"),
                     alt.Tooltip("power_w:Q", title="Mean power (W)", format=",.0f"),
                     alt.Tooltip("p10_w:Q", title="10th percentile (W)", format=",.0f"),
                     alt.Tooltip("p90_w:Q", title="90th percentile (W)", format=",.0f"),
                     alt.Tooltip("device_hours:Q", title="Device-hours", format=",.0f")]),
    ).add_params(sel).properties(
        title=alt.Title("Power against utilisation, by chip",
                        subtitle="Mean power per 5 % utilisation bin, band = 10th–90th percentile"),
        width=theme.HALF_W, height=theme.HEIGHT)
    sec.blocks.append(Chart("fleet-power-vs-utilisation", chip_filter(ch), df,
                            "Where the line meets 0 % is the power a device draws for nothing.", filter_by="chip"))

    daily = tidy(wh.df(f"""
        select strftime(cast(hour_ts as date), '%Y-%m-%d') as date, chip, sum(avg_power_w) / 1000 as energy_kwh,
               count(distinct device_id) as devices
        from {HOURLY} group by all order by date, chip"""), 5)
    daily["k"] = daily.chip.map(lambda c: pal.chips.index(c) if c in pal.chips else 99)
    ch = alt.Chart(daily).mark_bar().encode(
        x=day_x("date", dates=daily.date),
        y=alt.Y("energy_kwh:Q", title="Device energy (kWh per day)", stack=True),
        color=pal.chip_color(),
        order=alt.Order("k:Q"),
        tooltip=[tt_date("date"), alt.Tooltip("chip:N", title="Chip"),
                 alt.Tooltip("energy_kwh:Q", title="Energy (kWh)", format=",.1f"),
                 alt.Tooltip("devices:Q", title="Devices reporting")],
    ).properties(title=alt.Title("Device energy per day, by chip", subtitle="kWh per day from hourly average power, stacked"),
                 width=theme.HALF_W, height=theme.HEIGHT)
    sec.blocks.append(Chart("fleet-energy-daily", chip_filter(ch, date="date"), daily,
                            "Measured at the devices: request, idle and unused energy together.", filter_by="chip"))
    return sec
