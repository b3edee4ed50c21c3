"""The Energy page's "Learned power model" section: the active power each chip and model draws while
prefilling and while decoding at each batch size, as the attribution learned it from the fleet's own
samples (marts.fct_power_model), and how well the fits held."""
from __future__ import annotations

import altair as alt
import pandas as pd

from dashboards import theme
from dashboards.pages._core import Chart, Ctx, Live, Section, chip_filter, columns, no_data, tidy

PM = "marts.fct_power_model"
CATALOG = "marts.fct_power_curve_catalog"
CURVE_DASH = {"learned": [1, 0], "catalog": [6, 4]}  # solid: learned from the fleet; dashed: the catalog's


def power_model_section(ctx: Ctx) -> Section:
    wh = ctx.wh
    sec = Section("Learned power model",
                  "Per device and UTC day, the attribution fits the interval energy above idle against the seconds "
                  "the device spent prefilling and decoding at each batch size (non-negative least squares, power "
                  "not falling as the batch grows), then splits each interval's measured energy in proportion to "
                  "that model. Days whose fit could not be trusted fall back to the per-step share.")
    note = no_data(wh, PM)
    if note:
        sec.blocks.append(note)
        return sec
    sec.blocks.append(_curve_chart(ctx))
    sec.blocks.append(summary_table(ctx))
    return sec


SUMMARY_MEASURES = [
    {"name": "devices", "max": "devices"},
    {"name": "learned_days", "sum": "learned_days"}, {"name": "device_days", "sum": "device_days"},
    {"name": "prefill_w", "ratio": ["prefill_w_sum", "prefill_n"]},
    {"name": "ratio", "ratio": ["ratio_sum", "ratio_n"]},
    {"name": "r2", "ratio": ["r2_sum", "r2_n"]}]
SUMMARY_COLUMNS = [{"key": "chip", "label": "Chip", "swatch": True}, {"key": "model", "label": "Model"},
                   {"key": "devices", "label": "Devices (most in a day)", "fmt": "num0"},
                   {"key": "learned_days", "label": "Device-days learned", "fmt": "num0"},
                   {"key": "device_days", "label": "Device-days", "fmt": "num0"},
                   {"key": "prefill_w", "label": "Prefill active power (W, mean)", "fmt": "num0"},
                   {"key": "ratio", "label": "Prefill / decode power (mean)", "fmt": "num2"},
                   {"key": "r2", "label": "Fit R² (mean)", "fmt": "num3"},
                   {"key": "reasons", "label": "Fallback reasons (any date)"}]


def summary_table(ctx: Ctx) -> Live:
    """Per chip and model for the selected chip, model and dates: devices, device-days learned, and the
    learned prefill power, prefill/decode ratio and fit R² as means over device-days (sums and counts
    per day, added up in the browser: a median cannot be added up from per-day figures). The fallback
    reasons are the chip and model's over the whole period."""
    wh, pal = ctx.wh, ctx.pal
    df = wh.df(f"""
        with r as (select chip, model, string_agg(distinct fallback_reason, '; ' order by fallback_reason) as reasons
                   from {PM} group by all)
        select strftime(p.date, '%Y-%m-%d') as date, p.chip, p.model, count(distinct p.device_id) as devices,
               count(distinct p.device_id) as device_days,
               count(distinct p.device_id) filter (where p.learned) as learned_days,
               sum(p.active_power_w) filter (where p.learned and p.feature = 'prefill') as prefill_w_sum,
               count(p.active_power_w) filter (where p.learned and p.feature = 'prefill') as prefill_n,
               sum(p.prefill_decode_ratio) filter (where p.learned and p.feature = 'prefill') as ratio_sum,
               count(p.prefill_decode_ratio) filter (where p.learned and p.feature = 'prefill') as ratio_n,
               sum(p.r2) filter (where p.feature = 'prefill') as r2_sum,
               count(p.r2) filter (where p.feature = 'prefill') as r2_n,
               coalesce(any_value(r.reasons), '–') as reasons
        from {PM} p left join r on r.chip is not distinct from p.chip and r.model is not distinct from p.model
        group by all order by all""")
    return Live("energy-power-model-table", {
        "kind": "table", "data": columns(df), "dims": ["date"],
        "sums": ["device_days", "learned_days", "prefill_w_sum", "prefill_n", "ratio_sum", "ratio_n", "r2_sum",
                 "r2_n"],
        "measures": SUMMARY_MEASURES, "group": ["chip", "model", "reasons"], "columns": SUMMARY_COLUMNS,
        "colors": {c: pal.chip_hex(c) for c in pal.chips}, "order": {"chip": pal.chips},
        "sort": {"col": "chip", "desc": False},
        "caption": "For the selected chip, model and dates. Prefill / decode power: learned prefill power over the "
                   "decode power averaged over the day's decode time. Power, ratio and R²: means over the learned "
                   "device-days (a median cannot be added up from per-day figures); fallback reasons over the "
                   "whole period."})


def curve_data(ctx: Ctx) -> pd.DataFrame:
    """The decode power-vs-batch series: ``learned`` (median over devices and days of each bin the
    device reached, at the bin's first batch) and ``catalog`` (the serving row's curve at each bin's
    first and last batch), one row per chip, model, curve and batch."""
    wh = ctx.wh
    learned = wh.df(f"""
        select chip, model, 'learned' as curve, batch_lo as batch, median(active_power_w) as active_power_w,
               median(active_power_per_request_w) as per_request_w, count(distinct device_id) as devices
        from {PM} where learned and feature <> 'prefill' and observed
        group by all order by chip, model, batch""")
    parts = [learned]
    if wh.exists(CATALOG) and wh.has(CATALOG):
        parts.append(wh.df(f"""
            select chip, model, 'catalog' as curve, batch, active_power_w,
                   active_power_per_request_w as per_request_w, cast(null as bigint) as devices
            from {CATALOG} where phase = 'decode' order by chip, model, batch"""))
    df = pd.concat([p for p in parts if len(p)] or [learned], ignore_index=True)
    df["series"] = df.chip + " / " + df.model + " / " + df.curve
    return tidy(df, 4)


def _curve_chart(ctx: Ctx) -> Chart:
    pal = ctx.pal
    curve = curve_data(ctx)
    ch = alt.Chart(curve).mark_line(point=alt.OverlayMarkDef(size=40)).encode(
        x=alt.X("batch:Q", title="Decode batch (requests decoding at once, log scale)",
                scale=alt.Scale(type="log", base=2), axis=alt.Axis(format="~g")),
        y=alt.Y("active_power_w:Q", title="Active power per device (W above idle)"),
        color=pal.chip_color(),
        detail="series:N",
        shape=alt.Shape("model:N", title="Model", legend=alt.Legend(orient="top")),
        strokeDash=alt.StrokeDash("curve:N", title="Curve", legend=alt.Legend(orient="top"),
                                  scale=alt.Scale(domain=list(CURVE_DASH), range=list(CURVE_DASH.values()))),
        tooltip=[alt.Tooltip("chip:N", title="Chip"), alt.Tooltip("model:N", title="Model"),
                 alt.Tooltip("curve:N", title="Curve"), alt.Tooltip("batch:Q", title="Batch"),
                 alt.Tooltip("active_power_w:Q", title="Active power (W)", format=",.0f"),
                 alt.Tooltip("per_request_w:Q", title="Per decoding request (W)", format=",.0f"),
                 alt.Tooltip("devices:Q", title="Devices (learned)")],
    ).properties(title=alt.Title("Decode power vs batch size: learned from the fleet (solid) and the catalog's (dashed)",
                                 subtitle=["Learned: median over devices and days of the fitted power per batch-size "
                                           "bin, at the bin's first batch; bins never reached are left out.",
                                           "Catalog: the serving row's power at each bin's first and last batch, "
                                           "up to its largest batch."]),
                 width=theme.FULL_W - 40, height=theme.HEIGHT + 40)
    return Chart("energy-power-model-curve", chip_filter(ch), curve,
                 "Power grows far more slowly than the batch: each decoding request's share, P(b)/b, falls as the "
                 "batch grows. A learned curve far from the catalog's is a chip behaving unlike its datasheet row.",
                 wide=True, filter_by="chip")
