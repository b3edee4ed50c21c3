"""energy.html, serving sections: energy per token against load (what batch size and traffic do to
J/token), and latency and time-to-first-token distributions, per chip and model.

Aggregated in DuckDB to small tables per day (load bins, log-spaced latency bins), summed in the browser
for the selected chip, model and dates. The per-day rows are inlined as CSV text (``csv_chart``), about
a quarter of the bytes of row objects."""
from __future__ import annotations

import altair as alt
import pandas as pd

from dashboards import theme
from dashboards.pages._core import Chart, Ctx, Note, Section, chip_filter, log_ticks, no_data, tidy
from dashboards.pages.inline import csv_chart

REQ = "marts.fct_request_energy"
#: bins per decade of load (tokens/s per replica) and of latency (seconds)
LOAD_BINS_PER_DECADE = 8
LAT_BINS_PER_DECADE = 10


def load_section(ctx: Ctx) -> Section:
    wh, pal = ctx.wh, ctx.pal
    sec = Section("Energy per token against load",
                  "Each replica-hour's load (tokens served per second by the replica) against the energy per "
                  "token in that hour, per chip and model. Energy per token falls as load rises (idle power is "
                  "shared by more tokens, batches fill) until the chip saturates: where the curve flattens is "
                  "the batch size and traffic to aim for.")
    note = no_data(wh, REQ)
    if note:
        sec.blocks.append(note)
        return sec
    k = LOAD_BINS_PER_DECADE
    df = tidy(wh.df(f"""
        with h as (select chip, model, replica_id, strftime(date_trunc('hour', arrival_ts), '%Y-%m-%d') as date,
                          date_trunc('hour', arrival_ts) as hour, sum(total_tokens) as tokens,
                          sum(energy_j) as energy_j
                   from {REQ} where status = 'ok' group by all having sum(total_tokens) > 0)
        select date, chip, model,
               power(10, floor(log10(tokens / 3600.0) * {k}) / {k}) as load_lo,
               power(10, (floor(log10(tokens / 3600.0) * {k}) + 1) / {k}) as load_hi,
               count(*) as replica_hours, sum(tokens) as tokens, sum(energy_j) as energy_j
        from h group by all order by all"""), 8)
    if df.empty:
        sec.blocks.append(Note("No successful requests to draw energy against load.", "info"))
        return sec
    df["load_mid"] = tidy(pd.DataFrame({"m": (df.load_lo * df.load_hi) ** 0.5}), 8).m
    ticks, dom = log_ticks(df.load_mid.min(), df.load_mid.max())
    cols = ["date", "chip", "model", "load_mid", "replica_hours", "tokens", "energy_j"]
    ch = csv_chart(df[cols]).mark_line(point=alt.OverlayMarkDef(size=30, filled=True)).encode(
        x=alt.X("load_mid:Q", title="Load (tokens per second per replica, log scale)",
                scale=alt.Scale(type="log", domain=dom, nice=False), axis=alt.Axis(values=ticks, format="~g")),
        y=alt.Y("j_per_token:Q", title="Energy per token (J/token)", scale=alt.Scale(zero=False)),
        color=pal.chip_color(),
        strokeDash=alt.StrokeDash("model:N", title="Model", legend=alt.Legend(orient="top")),
        detail="model:N",
        tooltip=[alt.Tooltip("chip:N", title="Chip"), alt.Tooltip("model:N", title="Model"),
                 alt.Tooltip("load_mid:Q", title="Load (tokens/s per replica)", format=",.1f"),
                 alt.Tooltip("j_per_token:Q", title="J/token", format=".3f"),
                 alt.Tooltip("replica_hours:Q", title="Replica-hours", format=",.0f")],
    ).properties(title=alt.Title("Energy per token against load, per chip and model",
                                 subtitle="J/token of the replica-hours in each load bin (tokens-weighted), "
                                          f"for the selected dates; {k} bins per decade"),
                 width=theme.FULL_W - 250, height=theme.HEIGHT)
    ch = chip_filter(ch, model="model", date="date").transform_aggregate(
        tokens="sum(tokens)", energy_j="sum(energy_j)", replica_hours="sum(replica_hours)",
        groupby=["chip", "model", "load_mid"]).transform_calculate(j_per_token="datum.energy_j / datum.tokens")
    sec.blocks.append(Chart("energy-j-per-token-vs-load", ch, df,
                            "A replica-hour is one replica's requests that arrived in one hour (UTC).", wide=True,
                            filter_by="chip"))
    return sec


def latency_section(ctx: Ctx) -> Section:
    wh, pal = ctx.wh, ctx.pal
    sec = Section("Latency and time to first token",
                  "Distribution of end-to-end latency and of time to first token (TTFT) of successful requests, "
                  "per chip and model: share of requests per log-spaced bin.")
    note = no_data(wh, REQ)
    if note:
        sec.blocks.append(note)
        return sec
    k = LAT_BINS_PER_DECADE
    df = tidy(wh.df(f"""
        with r as (select strftime(date, '%Y-%m-%d') as date, chip, model, m.metric, m.s
                   from {REQ}, lateral (values ('latency', latency_s), ('time to first token', ttft_s)) m(metric, s)
                   where status = 'ok' and m.s > 0)
        select date, chip, model, metric,
               power(10, (floor(log10(s) * {k}) + 0.5) / {k}) as seconds, count(*) as requests
        from r group by all order by all"""), 6)
    if df.empty:
        sec.blocks.append(Note("No request timings (latency_s, ttft_s) in marts.fct_request_energy.", "info"))
        return sec
    for metric, name in (("latency", "energy-latency-dist"), ("time to first token", "energy-ttft-dist")):
        d = df[df.metric == metric].drop(columns=["metric"])
        if d.empty:
            continue
        ticks, dom = log_ticks(float(d.seconds.min()), float(d.seconds.max()))
        ch = csv_chart(d).mark_line(interpolate="monotone", point=alt.OverlayMarkDef(size=12)).encode(
            x=alt.X("seconds:Q", title=f"{metric.capitalize()} (s, log scale)",
                    scale=alt.Scale(type="log", domain=dom, nice=False), axis=alt.Axis(values=ticks, format="~g")),
            y=alt.Y("share_pct:Q", title="Share of requests (% per bin)"),
            color=pal.chip_color(),
            strokeDash=alt.StrokeDash("model:N", title="Model", legend=alt.Legend(orient="top", direction="vertical")),
            detail="model:N",
            tooltip=[alt.Tooltip("chip:N", title="Chip"), alt.Tooltip("model:N", title="Model"),
                     alt.Tooltip("seconds:Q", title="Seconds (bin centre)", format=".3~g"),
                     alt.Tooltip("share_pct:Q", title="Share (%)", format=".1f"),
                     alt.Tooltip("requests:Q", title="Requests", format=",.0f")],
        ).properties(title=alt.Title(f"{metric.capitalize()} by chip and model",
                                     subtitle=f"Share of successful requests per bin ({k} per decade), selected "
                                              "dates; line style = model"),
                     width=theme.HALF_W - 80, height=theme.HEIGHT)
        ch = chip_filter(ch, model="model", date="date").transform_aggregate(
            requests="sum(requests)", groupby=["chip", "model", "seconds"]).transform_joinaggregate(
            total="sum(requests)", groupby=["chip", "model"]).transform_calculate(
            share_pct="datum.requests / datum.total * 100")
        sec.blocks.append(Chart(name, ch, d, "TTFT is the wait before the first token; latency runs to the last."
                                if metric != "latency" else "End-to-end latency: arrival to last token.",
                                filter_by="chip"))
    return sec
