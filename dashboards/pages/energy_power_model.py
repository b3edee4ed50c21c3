"""The Energy page's "Learned power model" section: the active power each chip and model draws while
prefilling and while decoding at each batch size, as the attribution learned it from the fleet's own
samples (marts.fct_power_model), and how well the fits held."""
from __future__ import annotations

import altair as alt

from dashboards import theme
from dashboards.pages._core import Chart, Ctx, Html, Section, chip_filter, fmt_num, html_table, no_data, tidy

PM = "marts.fct_power_model"


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
    curve = wh.df(f"""
        select chip, model, batch_lo, feature_order, median(active_power_w) as active_power_w,
               median(active_power_per_request_w) as per_request_w, count(distinct device_id) as devices
        from {PM} where learned and feature <> 'prefill' and observed
        group by all order by chip, model, batch_lo""")
    curve["series"] = curve.chip + " / " + curve.model
    curve = tidy(curve, 4)
    ch = alt.Chart(curve).mark_line(point=alt.OverlayMarkDef(size=40)).encode(
        x=alt.X("batch_lo:Q", title="Decode batch (requests decoding at once, bin start, log scale)",
                scale=alt.Scale(type="log", base=2), axis=alt.Axis(format="~g")),
        y=alt.Y("active_power_w:Q", title="Learned active power per device (W above idle)"),
        color=pal.chip_color(),
        detail="model:N",
        strokeDash=alt.StrokeDash("model:N", title="Model", legend=alt.Legend(orient="top")),
        tooltip=[alt.Tooltip("chip:N", title="Chip"), alt.Tooltip("model:N", title="Model"),
                 alt.Tooltip("batch_lo:Q", title="Batch from"),
                 alt.Tooltip("active_power_w:Q", title="Active power (W)", format=",.0f"),
                 alt.Tooltip("per_request_w:Q", title="Per decoding request (W)", format=",.0f"),
                 alt.Tooltip("devices:Q", title="Devices")],
    ).properties(title=alt.Title("Decode power vs batch size, learned from the fleet",
                                 subtitle="Median over devices and days of the fitted power per batch-size bin; "
                                          "bins the device never reached are left out"),
                 width=theme.HALF_W, height=theme.HEIGHT)
    sec.blocks.append(Chart("energy-power-model-curve", chip_filter(ch), curve,
                            "Power grows far more slowly than the batch: each decoding request's share, P(b)/b, "
                            "falls as the batch grows.", filter_by="chip"))
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
