"""Cost page sections: input vs output token cost, margins and break-even API prices.

Input tokens carry the cost of their request's prefill phase, output tokens the cost of its
decode phase (as the attribution split each request's energy); per chip and model the two
per-token figures add up to the blended one. Margin = revenue - allocated cost.
"""
from __future__ import annotations

import altair as alt

from dashboards import theme
from dashboards.pages._core import Chart, Ctx, Live, Section, chip_filter, columns, no_data, safe, tidy
from dashboards.pages.cost_break_even import break_even_table

TE = "marts.fct_token_economics"
BE = "marts.fct_break_even_price"


def sections(ctx: Ctx) -> list[Section]:
    """The sections cost.py adds after its own."""
    return [safe(ctx, _split, "Input vs output tokens"), safe(ctx, _margins, "Margins and break-even prices")]


def _split(ctx: Ctx) -> Section:
    wh, pal = ctx.wh, ctx.pal
    sec = Section("Input vs output tokens",
                  "API prices are set per input and per output token. An input token costs its share of its "
                  "request's prefill phase (one parallel pass over the prompt); an output token its share of the "
                  "decode phase (one token per step). Both bases; the two add up to the blended cost per token.")
    note = no_data(wh, TE)
    if note:
        sec.blocks.append(note)
        return sec
    # per day: the chip and dates filter the days, the chart adds them up (a rate is a ratio of sums);
    # one row per day, chip and model, the four (meter, basis) costs folded into rows in the browser
    df = tidy(wh.df(f"""
        select strftime(date, '%Y-%m-%d') as date, chip, model,
               sum(input_cost_usd) as input_allocation, sum(input_usage_cost_usd) as input_usage,
               sum(output_cost_usd) as output_allocation, sum(output_usage_cost_usd) as output_usage,
               sum(input_tokens) as input_tokens, sum(output_tokens) as output_tokens
        from {TE} where chip is not null group by all order by all"""), 8)
    csv = wh.df(f"""
        select chip, model, m.meter, b.basis,
               sum(case when m.meter = 'input' then
                            case when b.basis = 'allocation' then input_cost_usd else input_usage_cost_usd end
                        else case when b.basis = 'allocation' then output_cost_usd else output_usage_cost_usd end
                   end) as meter_cost_usd,
               sum(case when m.meter = 'input' then input_tokens else output_tokens end) as meter_tokens,
               meter_cost_usd / nullif(meter_tokens, 0) * 1e6 as usd_per_mtok
        from {TE}, (values ('input'), ('output')) m(meter), (values ('allocation'), ('usage')) b(basis)
        where chip is not null group by all order by all""")
    base = chip_filter(alt.Chart(df), date="date").transform_fold(
        ["input_allocation", "input_usage", "output_allocation", "output_usage"], as_=["key", "meter_cost_usd"],
    ).transform_calculate(
        meter="split(datum.key, '_')[0]", basis="split(datum.key, '_')[1]",
        meter_tokens="split(datum.key, '_')[0] == 'input' ? datum.input_tokens : datum.output_tokens",
    ).transform_aggregate(
        meter_cost_usd="sum(meter_cost_usd)", meter_tokens="sum(meter_tokens)",
        groupby=["chip", "model", "meter", "basis"]).transform_calculate(
        usd_per_mtok="datum.meter_tokens ? datum.meter_cost_usd / datum.meter_tokens * 1e6 : null").encode(
        # every chip named under its bars: slanted, none dropped for overlap
        x=alt.X("chip:N", title=None, sort=pal.chips,
                axis=alt.Axis(labelAngle=-30, labelAlign="right", labelOverlap=False, labelFontSize=10.5)),
        xOffset=alt.XOffset("basis:N", sort=["allocation", "usage"]),
        y=alt.Y("usd_per_mtok:Q", title="Cost (USD per million tokens)"),
        tooltip=[alt.Tooltip("chip:N", title="Chip"), alt.Tooltip("model:N", title="Model"),
                 alt.Tooltip("meter:N", title="Tokens"), alt.Tooltip("basis:N", title="Cost basis"),
                 alt.Tooltip("usd_per_mtok:Q", title="USD/Mtok", format="$.3f")])
    panels = []
    for meter in ("input", "output"):
        b = base.transform_filter(alt.datum.meter == meter)
        panels.append((alt.layer(
            b.mark_bar().encode(color=pal.chip_color(legend=False),
                                opacity=alt.Opacity("basis:N", title="Cost basis", sort=["allocation", "usage"],
                                                    scale=alt.Scale(domain=["allocation", "usage"], range=[1.0, 0.4]),
                                                    legend=alt.Legend(orient="top"))),
            # one label per chip, over its (taller) allocation bar, three significant digits so that
            # small input costs do not all read "$0.01" nor overlap the usage bar's label
            b.transform_filter(alt.datum.basis == "allocation").mark_text(dy=-7, fontSize=9.5).encode(
                text=alt.Text("usd_per_mtok:Q", format="$.3~g")),
        ).facet(column=alt.Column("model:N", title=None)).properties(
            title=alt.Title(f"{meter.capitalize()} tokens", anchor="middle"))))
    ch = alt.hconcat(*panels, spacing=24).resolve_scale(y="independent").properties(
        title=alt.Title("Cost per million input and output tokens, by chip and model",
                        subtitle="USD per million tokens; solid = allocation basis, pale = usage basis"))
    sec.blocks.append(Chart("cost-input-output-per-mtok", ch, df,
                            "Decode is sequential and memory-bound: an output token costs many input tokens.",
                            wide=True, filter_by="chip", csv=csv))
    sec.blocks.append(split_table(ctx))
    return sec


def _margins(ctx: Ctx) -> Section:
    wh, pal = ctx.wh, ctx.pal
    sec = Section("Margins and break-even prices",
                  "Margin: revenue minus allocated cost (the whole bill). Break-even: the API price per million "
                  "input and output tokens at which each model on each chip covers its cost.")
    note = no_data(wh, TE)
    if note:
        sec.blocks.append(note)
        return sec
    df = tidy(wh.df(f"""select strftime(date, '%Y-%m-%d') as date, model, tier, vendor,
                               sum(revenue_usd) as revenue_usd, sum(cost_usd) as cost_usd, sum(margin_usd) as margin_usd
                        from {TE} where vendor is not null group by all order by all"""), 8)
    # per day: the vendor and dates filter the days, the chart adds them up
    ch = chip_filter(alt.Chart(df), "vendor", date="date").transform_aggregate(
        revenue_usd="sum(revenue_usd)", cost_usd="sum(cost_usd)", margin_usd="sum(margin_usd)",
        groupby=["model", "tier", "vendor"]).mark_bar().encode(
        y=alt.Y("tier:N", title=None, sort=["api", "subscription", "free"]),
        yOffset=alt.YOffset("vendor:N", sort=pal.vendors),
        x=alt.X("margin_usd:Q", title="Margin (USD, revenue - allocated cost)", axis=alt.Axis(format="$~s")),
        color=pal.vendor_color(),
        tooltip=[alt.Tooltip("model:N", title="Model"), alt.Tooltip("tier:N", title="Tier"),
                 alt.Tooltip("vendor:N", title="Vendor"),
                 alt.Tooltip("revenue_usd:Q", title="Revenue (USD)", format="$,.2f"),
                 alt.Tooltip("cost_usd:Q", title="Allocated cost (USD)", format="$,.2f"),
                 alt.Tooltip("margin_usd:Q", title="Margin (USD)", format="$,.2f")],
    ).properties(width=theme.HALF_W - 60, height=140).facet(row=alt.Row("model:N", title=None)).properties(
        title=alt.Title("Margin per model, tier and vendor", subtitle="USD over the selected dates; below zero = loss"))
    csv = wh.df(f"""select model, tier, vendor, sum(revenue_usd) as revenue_usd, sum(cost_usd) as cost_usd,
                           sum(margin_usd) as margin_usd
                    from {TE} where vendor is not null group by all order by all""")
    sec.blocks.append(Chart("cost-margin-model-tier-vendor", ch, df,
                            "Free tier: no revenue, so its margin is minus its cost.", filter_by="vendor", csv=csv))
    if wh.has(BE):
        sec.blocks.append(break_even_table(ctx))
    return sec


SPLIT_MEASURES = [
    {"name": "input_usd_per_mtok", "ratio": ["input_cost_usd", "input_tokens"], "k": 1e6},
    {"name": "output_usd_per_mtok", "ratio": ["output_cost_usd", "output_tokens"], "k": 1e6},
    {"name": "usd_per_mtok", "ratio": ["cost_usd", "tokens"], "k": 1e6},
    {"name": "output_per_100_input", "ratio": ["output_tokens", "input_tokens"], "k": 100}]
SPLIT_COLUMNS = [{"key": "chip", "label": "Chip", "swatch": True}, {"key": "model", "label": "Model"},
                 {"key": "input_usd_per_mtok", "label": "Input USD/Mtok", "fmt": "usd3"},
                 {"key": "output_usd_per_mtok", "label": "Output USD/Mtok", "fmt": "usd3"},
                 {"key": "usd_per_mtok", "label": "Blended USD/Mtok", "fmt": "usd3"},
                 {"key": "output_per_100_input", "label": "Output per 100 input tokens", "fmt": "num1"}]


def split_table(ctx: Ctx) -> Live:
    """Input, output and blended USD/Mtok per chip and model for the selected chip, model and dates
    (per-day sums of marts.fct_token_economics, added up in the browser)."""
    wh, pal = ctx.wh, ctx.pal
    daily = wh.df(f"""select strftime(date, '%Y-%m-%d') as date, chip, model, sum(input_tokens) as input_tokens,
                             sum(output_tokens) as output_tokens, sum(tokens) as tokens,
                             sum(input_cost_usd) as input_cost_usd, sum(output_cost_usd) as output_cost_usd,
                             sum(cost_usd) as cost_usd
                      from {TE} where chip is not null group by all order by all""")
    return Live("cost-input-output-table", {
        "kind": "table", "data": columns(daily), "dims": ["date"],
        "sums": ["input_tokens", "output_tokens", "tokens", "input_cost_usd", "output_cost_usd", "cost_usd"],
        "measures": SPLIT_MEASURES, "group": ["chip", "model"], "columns": SPLIT_COLUMNS,
        "colors": {c: pal.chip_hex(c) for c in pal.chips}, "order": {"chip": pal.chips},
        "sort": {"col": "chip", "desc": False},
        "caption": "Allocation basis, for the selection. Blended = (input tokens x input price + output tokens x "
                   "output price) / all tokens."})
