"""cost.html: cost per token over time, allocation vs usage, the most expensive workloads."""
from __future__ import annotations

import altair as alt

from dashboards import theme
from dashboards.pages import workload_table
from dashboards.pages._core import (SIG_CHIP, SIG_FROM, SIG_TO, Chart, Ctx, Page, Section, chip_filter, day_x, no_data, safe,
                                    single_time, tidy, tt_date, utc_x)

CPT = "marts.fct_cost_per_token_daily"
PNL = "marts.fct_pnl_daily"
TOP = 12


def build(ctx: Ctx) -> Page:
    page = Page("cost", "Cost", "Cost per token",
                "What a million tokens costs on each chip, day by day, on two bases. Allocation basis: the whole "
                "bill (energy and hardware, idle capacity included) shared out to the requests. Usage basis: "
                "only the energy and device time the requests used. The gap is what idle capacity costs.")
    page.sections += [safe(ctx, _over_time, "Cost per token over time"),
                      safe(ctx, _basis, "Allocation vs usage"),
                      safe(ctx, _workloads, "Most expensive workloads"),
                      safe(ctx, workload_table.section, "Cost per million tokens by workload")]
    from dashboards.pages.cost_split import sections as split_sections  # input vs output tokens, margins

    page.sections += split_sections(ctx)
    return page


def _over_time(ctx: Ctx) -> Section:
    wh, pal = ctx.wh, ctx.pal
    sec = Section("Cost per token over time")
    note = no_data(wh, CPT)
    if note:
        sec.blocks.append(note)
        return sec
    df = tidy(wh.df(f"""
        select strftime(date, '%Y-%m-%d') as date, chip, b.basis,
               sum(case when b.basis = 'allocation' then cost_usd else usage_cost_usd end) / sum(tokens) * 1e6
                   as usd_per_mtok,
               sum(tokens) as tokens, sum(requests) as requests
        from {CPT}, (values ('allocation'), ('usage')) b(basis)
        group by all having sum(tokens) > 0 order by date, chip, b.basis"""), 5)
    sel = alt.selection_point(fields=["chip"], bind="legend")
    basis_dom = ["allocation", "usage"]
    if single_time(df.date) is None:
        # a line per chip and basis; solid = allocation, dashed = usage
        mark = alt.Chart(df).mark_line(point=alt.OverlayMarkDef(size=16))
        basis_enc = {"strokeDash": alt.StrokeDash(
                         "basis:N", title="Cost basis", sort=basis_dom,
                         scale=alt.Scale(domain=basis_dom, range=[[1, 0], [5, 3]]),
                         legend=alt.Legend(orient="top", symbolType="stroke", symbolStrokeWidth=2, symbolSize=400)),
                     "detail": "basis:N"}
        basis_sub = "solid = allocation basis, dashed = usage basis"
    else:
        # one day: no line to dash, so the basis is the point's shape
        mark = alt.Chart(df).mark_point(filled=True, size=110, opacity=1)
        basis_enc = {"shape": alt.Shape("basis:N", title="Cost basis", sort=basis_dom,
                                        scale=alt.Scale(domain=basis_dom, range=["circle", "diamond"]),
                                        legend=alt.Legend(orient="top", symbolFillColor="#555555"))}
        basis_sub = "circle = allocation basis, diamond = usage basis"
    ch = mark.encode(
        x=utc_x("date", dates=df.date),
        y=alt.Y("usd_per_mtok:Q", title="Cost (USD per million tokens)", scale=alt.Scale(zero=True)),
        color=pal.chip_color(),
        **basis_enc,
        opacity=alt.condition(sel, alt.value(1), alt.value(0.12)),
        tooltip=[tt_date("date"), alt.Tooltip("chip:N", title="Chip"), alt.Tooltip("basis:N", title="Cost basis"),
                 alt.Tooltip("usd_per_mtok:Q", title="USD/Mtok", format="$.3f"),
                 alt.Tooltip("tokens:Q", title="Tokens", format=",.0f"),
                 alt.Tooltip("requests:Q", title="Requests", format=",.0f")],
    ).add_params(sel).properties(
        title=alt.Title("Cost per million tokens per day, by chip",
                        subtitle=f"USD per million tokens; {basis_sub}; click a chip in the legend to highlight it"),
        width=theme.FULL_W - 40, height=300)
    sec.blocks.append(Chart("cost-per-mtok-daily", chip_filter(ch, date="date"), df,
                            "Allocation basis carries idle capacity, so it rises when traffic falls; usage basis does not.",
                            wide=True, filter_by="chip"))
    return sec


def _basis(ctx: Ctx) -> Section:
    wh, pal = ctx.wh, ctx.pal
    sec = Section("Allocation vs usage")
    note = no_data(wh, CPT)
    if note:
        sec.blocks.append(note)
        return sec
    df = tidy(wh.df(f"""
        select strftime(date, '%Y-%m-%d') as date, chip, model, b.basis,
               sum(case when b.basis = 'allocation' then cost_usd else usage_cost_usd end) as basis_cost_usd,
               sum(tokens) as tokens, sum(cost_usd) as cost_usd, sum(usage_cost_usd) as usage_cost_usd
        from {CPT}, (values ('allocation'), ('usage')) b(basis)
        group by all order by all"""), 8)
    enc = dict(
        x=alt.X("chip:N", title=None, sort=pal.chips, axis=alt.Axis(labelAngle=0, labelFontSize=11)),
        xOffset=alt.XOffset("basis:N", sort=["allocation", "usage"]),
        y=alt.Y("usd_per_mtok:Q", title="Cost (USD per million tokens)"),
        tooltip=[alt.Tooltip("chip:N", title="Chip"), alt.Tooltip("model:N", title="Model"),
                 alt.Tooltip("basis:N", title="Cost basis"),
                 alt.Tooltip("usd_per_mtok:Q", title="USD/Mtok", format="$.3f"),
                 alt.Tooltip("idle_premium_pct:Q", title="Allocation over usage (%)", format=".0f")])
    models = sorted(df.model.unique(), key=lambda m: (len(m), m))
    panels = []
    for i, m in enumerate(models):
        # split in Python (a name never goes into an expression); the chip and dates filter the days, then
        # the chart adds them up: a rate is a ratio of sums
        b = chip_filter(alt.Chart(df[df.model == m]), date="date").transform_aggregate(
            basis_cost_usd="sum(basis_cost_usd)", tokens="sum(tokens)", cost_usd="sum(cost_usd)",
            usage_cost_usd="sum(usage_cost_usd)", groupby=["chip", "model", "basis"],
        ).transform_filter("datum.tokens > 0").transform_calculate(
            usd_per_mtok="datum.basis_cost_usd / datum.tokens * 1e6",
            idle_premium_pct="datum.usage_cost_usd ? (datum.cost_usd - datum.usage_cost_usd) / datum.usage_cost_usd * 100 : null",
        ).encode(**enc)
        panels.append((alt.layer(
            b.mark_bar().encode(
                color=pal.chip_color(legend=False),
                opacity=alt.Opacity("basis:N", title="Cost basis", sort=["allocation", "usage"],
                                    scale=alt.Scale(domain=["allocation", "usage"], range=[1.0, 0.4]),
                                    legend=alt.Legend(orient="top"))),
            b.mark_text(dy=-7, fontSize=10).encode(text=alt.Text("usd_per_mtok:Q", format="$.2f")),
        ).properties(title=alt.Title(m, anchor="middle", fontSize=13), width=(theme.FULL_W - 80) // max(1, len(models)),
                     height=theme.HEIGHT)))
    ch = alt.hconcat(*panels, spacing=14).resolve_scale(y="independent").properties(
        title=alt.Title("Allocation vs usage cost, by chip and model",
                        subtitle="USD per million tokens; solid = allocation, pale = usage"))
    sec.blocks.append(Chart("cost-basis-by-model", ch, df,
                            "The pale bar is what the requests used; the rest is idle and unused capacity.",
                            wide=True, filter_by="chip"))

    if wh.has(PNL):
        p = tidy(wh.df(f"""select strftime(date, '%Y-%m-%d') as date, vendor, total_cost_usd, energy_cost_usd,
                                  hardware_cost_usd, revenue_usd
                           from {PNL} where vendor <> 'all' order by date, vendor"""), 5)
        # a stacked area needs two days to have any width: one day is drawn as one stacked bar
        one_day = single_time(p.date) is not None
        mark = (alt.Chart(p).mark_bar() if one_day else
                alt.Chart(p).mark_area(opacity=0.9, line={"strokeWidth": 1}))
        ch = mark.encode(
            x=day_x("date", dates=p.date) if one_day else utc_x("date", dates=p.date),
            y=alt.Y("total_cost_usd:Q", title="Total cost (USD per day)", stack=True),
            color=pal.vendor_color(),
            order=alt.Order("vendor_order:Q"),
            tooltip=[tt_date("date"), alt.Tooltip("vendor:N", title="Vendor"),
                     alt.Tooltip("total_cost_usd:Q", title="Total cost (USD)", format="$,.2f"),
                     alt.Tooltip("energy_cost_usd:Q", title="of which energy (USD)", format="$,.2f"),
                     alt.Tooltip("hardware_cost_usd:Q", title="of which hardware (USD)", format="$,.2f")],
        ).transform_calculate(vendor_order=f"indexof({pal.vendors!r}, datum.vendor)").properties(
            title=alt.Title("Fleet cost per day, by vendor", subtitle="USD per day, allocation basis, stacked"),
            width=theme.HALF_W, height=theme.HEIGHT)
        sec.blocks.append(Chart("cost-daily-by-vendor", chip_filter(ch, "vendor", date="date"), p,
                                "The whole bill: energy plus hardware, idle devices included.", filter_by="vendor"))
    else:
        sec.blocks.append(no_data(wh, PNL))
    return sec


def _dates() -> str:
    """The date-range filter of a chart whose data has a ``date`` column of ISO days."""
    return f"datum.date >= {SIG_FROM} && datum.date <= {SIG_TO}"


def _workloads(ctx: Ctx) -> Section:
    wh, pal = ctx.wh, ctx.pal
    sec = Section("Most expensive workloads",
                  f"A workload is a model and a task on one chip. The {TOP} most expensive per million tokens, and "
                  f"the {TOP} that cost most in total. With a chip selected, that chip's top {TOP}.")
    note = no_data(wh, CPT)
    if note:
        sec.blocks.append(note)
        return sec
    # per day: the chart filters the chip and dates, adds up each workload, ranks (all chips and per chip)
    # (the workload's label is put together in the browser: no label repeated on every day's row)
    df = tidy(wh.df(f"""
        select strftime(date, '%Y-%m-%d') as date, chip, coalesce(model, 'no model') as model,
               coalesce(task, 'no task') as task, sum(tokens) as tokens, sum(cost_usd) as cost_usd,
               sum(usage_cost_usd) as usage_cost_usd
        from {CPT} group by all order by all"""), 8)
    csv = wh.df(f"""
        select coalesce(model, 'no model') || ' · ' || coalesce(task, 'no task') || ' · ' || chip as workload,
               chip, coalesce(model, 'no model') as model, coalesce(task, 'no task') as task,
               sum(tokens) as tokens, sum(requests) as requests, sum(cost_usd) as cost_usd,
               sum(usage_cost_usd) as usage_cost_usd, sum(cost_usd) / nullif(sum(tokens), 0) * 1e6 as usd_per_mtok,
               sum(usage_cost_usd) / nullif(sum(tokens), 0) * 1e6 as usage_usd_per_mtok
        from {CPT} group by all order by cost_usd desc""")
    for metric, rank, title, fmt, xtitle, cap in (
            ("usd_per_mtok", "rate", "Most expensive workloads per million tokens",
             "$.2f", "Cost (USD per million tokens, allocation basis)",
             "Rate: what a million tokens of this workload costs."),
            ("cost_usd", "cost", "Workloads that cost most in total", "$,.2f", "Total cost (USD, allocation basis)",
             "Spend: rate times volume.")):
        flt = (f"({SIG_CHIP} == 'all' && datum.rank_{rank}_all <= {TOP}) || "
               f"({SIG_CHIP} != 'all' && datum.chip == {SIG_CHIP} && datum.rank_{rank}_chip <= {TOP})")
        base = alt.Chart(df).transform_filter(_dates()).transform_calculate(
            workload="datum.model + ' · ' + datum.task + ' · ' + datum.chip",
        ).transform_aggregate(
            tokens="sum(tokens)", cost_usd="sum(cost_usd)",
            usage_cost_usd="sum(usage_cost_usd)", groupby=["workload", "chip", "model", "task"],
        ).transform_filter("datum.tokens > 0").transform_calculate(
            usd_per_mtok="datum.cost_usd / datum.tokens * 1e6",
            usage_usd_per_mtok="datum.usage_cost_usd / datum.tokens * 1e6",
        ).transform_window(**{f"rank_{rank}_all": "row_number()"}, sort=[alt.SortField(metric, order="descending")],
        ).transform_window(**{f"rank_{rank}_chip": "row_number()"}, groupby=["chip"],
                           sort=[alt.SortField(metric, order="descending")]).transform_filter(flt).encode(
            y=alt.Y("workload:N", title=None, sort=alt.EncodingSortField(metric, op="max", order="descending"),
                    axis=alt.Axis(labelLimit=320, labelFontSize=11)),
            x=alt.X(f"{metric}:Q", title=xtitle, axis=alt.Axis(format="$~s" if metric == "cost_usd" else "$.2f")),
            tooltip=[alt.Tooltip("model:N", title="Model"), alt.Tooltip("task:N", title="Task"),
                     alt.Tooltip("chip:N", title="Chip"),
                     alt.Tooltip("usd_per_mtok:Q", title="USD/Mtok (allocation)", format="$.3f"),
                     alt.Tooltip("usage_usd_per_mtok:Q", title="USD/Mtok (usage)", format="$.3f"),
                     alt.Tooltip("cost_usd:Q", title="Total cost (USD)", format="$,.2f"),
                     alt.Tooltip("tokens:Q", title="Tokens", format=",.0f")])
        ch = alt.layer(
            base.mark_bar(height={"band": 0.75}).encode(color=pal.chip_color()),
            base.mark_text(align="left", dx=3, fontSize=10.5).encode(text=alt.Text(f"{metric}:Q", format=fmt)),
        ).properties(title=alt.Title(title, subtitle=f"Top {TOP}; bars coloured by chip"),
                     width=theme.FULL_W - 330, height=TOP * 22)
        sec.blocks.append(Chart(f"cost-top-workloads-{rank}", ch, df, cap, wide=True, filter_by="chip", csv=csv))
    return sec
