"""The Energy page's "Learned power model" section: the active power each chip and model draws while
prefilling and while decoding at each batch size, as the attribution learned it from the fleet's own
samples (marts.fct_power_model), and how well the fits held."""
from __future__ import annotations

import altair as alt
import pandas as pd

from dashboards import theme
from dashboards.pages._core import Chart, Ctx, Html, Section, chip_filter, fmt_num, html_table, no_data, tidy

PM = "marts.fct_power_model"
CATALOG = "marts.fct_power_curve_catalog"
CURVE_DASH = {"learned": [1, 0], "catalog": [6, 4]}  # solid: learned from the fleet; dashed: the catalog's


def power_model_section(ctx: Ctx) -> Section:
    wh, pal = ctx.wh, ctx.pal
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
    summary = wh.df(f"""
        select chip, model, count(distinct device_id) as devices, count(distinct (device_id, date)) as device_days,
               count(distinct (device_id, date)) filter (where learned) as learned_days,
               median(prefill_decode_ratio) filter (where learned and feature = 'prefill') as ratio,
               median(active_power_w) filter (where learned and feature = 'prefill') as prefill_w,
               median(r2) filter (where feature = 'prefill') as r2,
               string_agg(distinct fallback_reason, '; ') as reasons
        from {PM} group by all order by chip, model""")
    sec.blocks.append(Html(html_table(
        ["Chip", "Model", "Devices", "Device-days learned", "Prefill active power (W)", "Prefill / decode power",
         "Fit R²", "Fallback reasons"],
        [[r.chip, r.model, fmt_num(r.devices), f"{int(r.learned_days)} of {int(r.device_days)}",
          fmt_num(r.prefill_w, 0), fmt_num(r.ratio, 2), fmt_num(r.r2, 3), r.reasons or "–"]
         for r in summary.itertuples()],
        caption="Prefill / decode power: learned prefill power over the decode power averaged over the day's decode "
                "time (medians over devices and days).", num_cols={2, 4, 5, 6},
        swatches={0: [pal.chip_hex(c) for c in summary.chip]})))
    return sec


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
