"""energy.html: per-request energy distributions, idle and unused capacity, attribution quality."""
from __future__ import annotations

import altair as alt
import pandas as pd

from dashboards import theme
from dashboards.pages import serving
from dashboards.pages.energy_capacity import capacity_section
from dashboards.pages.inline import csv_chart
from dashboards.markup import md_code
from dashboards.pages._core import (Chart, Ctx, Html, Page, Section, chip_filter, fmt_num, html_table, log_ticks,
                                    no_data, safe, tidy)

REQ = "marts.fct_request_energy"
AQ = "attribution.quality"
SHAPES = ["circle", "square", "triangle-up", "diamond", "cross", "triangle-down"]
#: half a histogram bin (ten per decade) as a factor: a bin spans centre / BIN_HALF to centre * BIN_HALF
BIN_HALF = round(10 ** 0.05, 12)
QUANTS = [("p5", 0.05), ("p25", 0.25), ("p50", 0.5), ("p75", 0.75), ("p95", 0.95)]


def build(ctx: Ctx) -> Page:
    page = Page("energy", "Energy", "Energy per request",
                "How much energy a request takes, by chip, model, task and language; how much of the measured "
                "device energy went to requests, to shared idle time and to capacity nobody used; and how well "
                "the attribution matches the ground truth. All figures are aggregated in the warehouse: "
                "distributions are histograms and percentiles, not individual requests.")
    page.sections += [safe(ctx, _distribution, "Per-request energy distribution"),
                      safe(ctx, _by_group, "By task and language"),
                      safe(ctx, serving.load_section, "Energy per token against load"),
                      safe(ctx, serving.latency_section, "Latency and time to first token"),
                      safe(ctx, capacity_section, "Idle and unused capacity"),
                      safe(ctx, _quality, "Attribution quality against ground truth")]
    from dashboards.pages.energy_power_model import power_model_section
    page.sections.append(safe(ctx, power_model_section, "Learned power model"))
    return page


def _distribution(ctx: Ctx) -> Section:
    wh, pal = ctx.wh, ctx.pal
    sec = Section("Per-request energy distribution",
                  "Energy of each successful request (attributed active energy plus its share of idle), binned "
                  "on a log scale: ten bins per factor of ten. Each line sums to 100 % for its chip and model.")
    note = no_data(wh, REQ)
    if note:
        sec.blocks.append(note)
        return sec
    df = wh.df(f"""
        with b as (select strftime(date, '%Y-%m-%d') as date, chip, model, floor(log10(energy_j) * 10) as k,
                          count(*) as n
                   from {REQ} where energy_j > 0 and coalesce(status, 'ok') = 'ok' group by all)
        select date, chip, model, power(10, (k + 0.5) / 10) as energy_j, n as requests
        from b order by model, chip, k, date""")
    df = tidy(df, 4)
    models = sorted(df.model.unique(), key=_model_key)
    panels = []
    for i, m in enumerate(models):
        dm = df[df.model == m]
        ticks, dom = log_ticks(dm.energy_j.min() / BIN_HALF, dm.energy_j.max() * BIN_HALF)
        # the bin edges are the centre over and times 10^0.05 (ten bins per decade): computed in the chart
        line = chip_filter(csv_chart(dm), date="date").transform_aggregate(
            requests="sum(requests)", groupby=["chip", "model", "energy_j"]).transform_joinaggregate(
            total="sum(requests)", groupby=["chip"]).transform_calculate(
            share_pct="datum.requests / datum.total * 100", bin_lo_j=f"datum.energy_j / {BIN_HALF}",
            bin_hi_j=f"datum.energy_j * {BIN_HALF}")
        panels.append(line.mark_line(interpolate="monotone", point=alt.OverlayMarkDef(size=16)).encode(
            x=alt.X("energy_j:Q", title="Energy per request (J, log scale)",
                    scale=alt.Scale(type="log", domain=dom, nice=False),
                    axis=alt.Axis(values=ticks, format="~s", labelAngle=0)),
            y=alt.Y("share_pct:Q", title="Share of requests (% per bin)" if i == 0 else None),
            color=pal.chip_color(),
            tooltip=[alt.Tooltip("chip:N", title="Chip"), alt.Tooltip("model:N", title="Model"),
                     alt.Tooltip("bin_lo_j:Q", title="Bin from (J)", format=",.1f"),
                     alt.Tooltip("bin_hi_j:Q", title="Bin to (J)", format=",.1f"),
                     alt.Tooltip("requests:Q", title="Requests", format=",.0f"),
                     alt.Tooltip("share_pct:Q", title="Share (%)", format=".1f")],
        ).properties(title=alt.Title(m, anchor="middle", fontSize=13), width=_panel_w(models), height=theme.HEIGHT))
    ch = alt.hconcat(*panels, spacing=24).resolve_scale(y="shared").properties(
        title=alt.Title("Distribution of energy per request, by chip and model",
                        subtitle="Share of a chip's requests in each energy bin, selected dates; log-scaled energy axis"))
    sec.blocks.append(Chart("energy-request-histogram", ch, df,
                            "Right of the peak: long prompts and long answers.", wide=True, filter_by="chip"))
    return sec


def _by_group(ctx: Ctx) -> Section:
    wh, pal = ctx.wh, ctx.pal
    sec = Section("By task and language",
                  "Boxes span the middle half of requests (25th–75th percentile), the black tick is the median, "
                  "whiskers reach the 5th and 95th percentiles. Percentiles are computed in the warehouse.")
    note = no_data(wh, REQ)
    if note:
        sec.blocks.append(note)
        return sec
    q = wh.df(f"""
        select model, chip, task, language, count(*) as requests,
               quantile_cont(energy_j, [0.05, 0.25, 0.5, 0.75, 0.95]) as q,
               sum(energy_j) / nullif(sum(total_tokens), 0) as j_per_token
        from {REQ} where energy_j > 0 and coalesce(status, 'ok') = 'ok'
        group by grouping sets ((model, chip, task), (model, chip, language))""")
    for i, (name, _) in enumerate(QUANTS):
        q[name] = q["q"].map(lambda v, i=i: float(v[i]))
    q = q.drop(columns=["q"])
    models = sorted(q.model.unique(), key=_model_key)
    for dim, title in (("task", "Task"), ("language", "Language")):
        d = tidy(q[q[dim].notna()].drop(columns=["language" if dim == "task" else "task"]), 4)
        if d.empty:  # no request gave a task (or a language): nothing to draw for that dimension
            continue
        order = (d.groupby(dim)["p50"].median().sort_values(ascending=False).index.tolist())
        sec.blocks.append(Chart(f"energy-box-{dim}", _box(d, dim, title, order, models, pal), d,
                                f"Energy per request by {dim}: percentiles per chip and model.", wide=True,
                                filter_by="chip"))
    # energy per token by task: a dot plot, comparable across tasks whatever their length; per-day sums,
    # added up in the browser for the selected dates
    d = tidy(wh.df(f"""
        select strftime(date, '%Y-%m-%d') as date, model, chip, task, count(*) as requests,
               sum(energy_j) as energy_j, sum(total_tokens) as tokens
        from {REQ} where energy_j > 0 and coalesce(status, 'ok') = 'ok' group by all order by all"""), 8)
    whole = q[q["task"].notna()]
    order = whole.groupby("task")["j_per_token"].median().sort_values(ascending=False).index.tolist()
    panels = []
    for i, m in enumerate(models):
        dots = chip_filter(csv_chart(d[d.model == m], codes=("chip", "model", "task")), date="date").transform_aggregate(
            requests="sum(requests)", energy_j="sum(energy_j)", tokens="sum(tokens)", groupby=["model", "chip", "task"]
        ).transform_calculate(j_per_token="datum.tokens > 0 ? datum.energy_j / datum.tokens : null")
        panels.append(dots.mark_point(filled=True, size=90, opacity=0.9).encode(
            y=alt.Y("task:N", title=None, sort=order, axis=alt.Axis(labels=i == 0, ticks=i == 0)),
            x=alt.X("j_per_token:Q", title="Energy per token (J/token)", scale=alt.Scale(zero=True)),
            color=pal.chip_color(),
            shape=alt.Shape("chip:N", scale=alt.Scale(domain=pal.chips, range=SHAPES[:len(pal.chips)]),
                            legend=alt.Legend(orient="top", title="Chip")),
            tooltip=[alt.Tooltip("chip:N", title="Chip"), alt.Tooltip("model:N", title="Model"),
                     alt.Tooltip("task:N", title="Task"), alt.Tooltip("j_per_token:Q", title="J/token", format=".3f"),
                     alt.Tooltip("requests:Q", title="Requests", format=",.0f")],
        ).properties(title=alt.Title(m, anchor="middle", fontSize=13), width=_panel_w(models), height=200))
    ch = alt.hconcat(*panels, spacing=16).properties(
        title=alt.Title("Energy per token by task", subtitle="Joules per token (prompt + completion), per chip and model, selected dates"))
    sec.blocks.append(Chart("energy-j-per-token-task", ch, d,
                            "Per token, tasks compare on an equal footing; per request (above), long answers dominate.",
                            wide=True, filter_by="chip"))
    return sec


def _box(d: pd.DataFrame, dim: str, title: str, order: list[str], models: list[str], pal: theme.Palette):
    panels = []
    for i, m in enumerate(models):
        dm = d[d.model == m]
        ticks, dom = log_ticks(dm.p5.min(), dm.p95.max())
        base = alt.Chart(dm).encode(
            y=alt.Y(f"{dim}:N", title=title if i == 0 else None, sort=order,
                    axis=alt.Axis(labels=i == 0, ticks=i == 0, domain=True)),
            yOffset=alt.YOffset("chip:N", scale=alt.Scale(domain=pal.chips, paddingInner=0.15)),
            color=pal.chip_color(),
            tooltip=[alt.Tooltip("chip:N", title="Chip"), alt.Tooltip("model:N", title="Model"),
                     alt.Tooltip(f"{dim}:N", title=title), alt.Tooltip("requests:Q", title="Requests", format=",.0f")]
            + [alt.Tooltip(f"{n}:Q", title=f"{n} (J)", format=",.1f") for n, _ in QUANTS])
        x = alt.X("p5:Q", title="Energy per request (J, log scale)", scale=alt.Scale(type="log", domain=dom, nice=False),
                  axis=alt.Axis(values=ticks, format="~s", labelAngle=0))
        panels.append(chip_filter(alt.layer(
            base.mark_rule(strokeWidth=1.5).encode(x=x, x2="p95:Q"),
            base.mark_bar(height={"band": 0.9}, cornerRadius=0).encode(x="p25:Q", x2="p75:Q"),
            base.mark_tick(color="#111111", thickness=2.5, bandSize=10).encode(x="p50:Q"),
        ).properties(title=alt.Title(m, anchor="middle", fontSize=13), width=_panel_w(models),
                     height=len(order) * max(1, len(pal.chips)) * 12 + 24)))
    return alt.hconcat(*panels, spacing=16).properties(
        title=alt.Title(f"Energy per request by {dim}",
                        subtitle="Box: 25th–75th percentile; black tick: median; whiskers: 5th–95th percentile"))


def _panel_w(models: list[str]) -> int:
    return max(260, (theme.FULL_W - 40 * len(models)) // max(1, len(models)))


def _quality(ctx: Ctx) -> Section:
    wh = ctx.wh
    sec = Section("Attribution quality against ground truth",
                  md_code("Written by `tokenwatt evaluate`, which compares the attributed per-request energy "
                          "with the simulator's ground truth at several sensor sampling intervals."))
    note = no_data(wh, AQ)
    if note:
        sec.blocks.append(note)
        return sec
    aq = wh.df(f"""select method, interval_s, median_ape_pct, p95_ape_pct, fleet_energy_error_pct,
                          conservation_residual_rel from {AQ} order by interval_s, method""")
    long = aq.melt(id_vars=["method", "interval_s"], value_vars=["median_ape_pct", "p95_ape_pct"],
                   var_name="statistic", value_name="ape_pct")
    long["statistic"] = long["statistic"].map({"median_ape_pct": "median", "p95_ape_pct": "95th percentile"})
    long = tidy(long, 4)
    methods = sorted(long.method.unique())
    one_interval = long.interval_s.nunique() <= 1
    xenc = (alt.X("method:N", title="Method", axis=alt.Axis(labelAngle=0)) if one_interval else
            alt.X("interval_s:Q", title="Sensor sampling interval (s, log scale)", scale=alt.Scale(type="log"),
                  axis=alt.Axis(values=sorted(long.interval_s.unique().tolist()), format="~g")))
    pos = long[long.ape_pct > 0]
    ticks, dom = log_ticks(pos.ape_pct.min(), pos.ape_pct.max()) if len(pos) else ([1, 10, 100], [1, 100])
    ch = alt.Chart(long).transform_filter("datum.ape_pct > 0").mark_line(point=alt.OverlayMarkDef(size=40)).encode(
        x=xenc,
        y=alt.Y("ape_pct:Q", title="Absolute percentage error per request (%, log scale)",
                scale=alt.Scale(type="log", domain=dom, nice=False), axis=alt.Axis(values=ticks, format="~g")),
        color=alt.Color("method:N", title="Method", scale=alt.Scale(domain=methods, range=theme.SERIES[:len(methods)]),
                        legend=alt.Legend(orient="right", labelLimit=300)),
        strokeDash=alt.StrokeDash("statistic:N", title="Statistic", sort=["median", "95th percentile"],
                                  scale=alt.Scale(domain=["median", "95th percentile"], range=[[1, 0], [5, 3]]),
                                  legend=alt.Legend(orient="right", symbolType="stroke", symbolStrokeWidth=2,
                                                    symbolSize=400)),
        tooltip=[alt.Tooltip("method:N", title="Method"), alt.Tooltip("interval_s:Q", title="Interval (s)"),
                 alt.Tooltip("statistic:N", title="Statistic"), alt.Tooltip("ape_pct:Q", title="APE (%)", format=".2f")],
    ).properties(title=alt.Title("Per-request attribution error vs ground truth",
                                 subtitle="Median (solid) and 95th percentile (dashed) absolute percentage error, by "
                                          "method and sensor sampling interval"),
                 width=theme.FULL_W - 330, height=theme.HEIGHT)
    sec.blocks.append(Chart("energy-attribution-error", ch, long,
                            "Lower is better; coarser sampling blurs short requests.", wide=True))
    sec.blocks.append(Html(html_table(
        ["Method", "Interval (s)", "Median APE (%)", "p95 APE (%)", "Fleet energy error (%)", "Conservation residual"],
        [[r.method, fmt_num(r.interval_s, 0), fmt_num(r.median_ape_pct, 2), fmt_num(r.p95_ape_pct, 2),
          fmt_num(r.fleet_energy_error_pct, 2), f"{r.conservation_residual_rel:.2e}"
          if pd.notna(r.conservation_residual_rel) else "–"] for r in aq.itertuples()],
        caption="APE = absolute percentage error of a request's attributed energy against the ground truth. "
                "Conservation residual = |attributed − measured| / measured over the fleet. One evaluation run "
                "per method and sampling interval over the whole fleet and period against the simulator's ground "
                "truth, not per chip, model or day: it cannot follow the filters.",
        num_cols={1, 2, 3, 4, 5})))
    return sec


def _model_key(m: str):
    """Models by size ("llama-8b" before "llama-70b"): the ASCII digits of the name ("²" is a digit to
    str.isdigit but not to int(), found by the hostile-names hypothesis test)."""
    digits = "".join(ch for ch in str(m) if "0" <= ch <= "9")
    return (int(digits) if digits else 0, str(m))
