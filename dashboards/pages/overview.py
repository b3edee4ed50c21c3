"""index.html: the headline figures per chip and vendor."""
from __future__ import annotations


import altair as alt
import pandas as pd

from dashboards import theme
from dashboards.pages._core import (Chart, Ctx, Live, Page, Section, chip_filter, columns, day_x, line_points, no_data,
                                    safe, tidy, tt_date, utc_x)

CPT = "marts.fct_cost_per_token_daily"
REQ = "marts.fct_request_energy"
PNL = "marts.fct_pnl_daily"


def build(ctx: Ctx) -> Page:
    page = Page("index", "Overview", "Fleet overview",
                "Headline figures per chip and vendor for the chip, model and dates selected above: energy per token, "
                "cost per million tokens on both cost bases, revenue and operating loss. Allocation basis "
                "charges every joule and every hardware-hour, idle time included, to the requests; usage "
                "basis charges only what the requests used.")
    page.sections += [safe(ctx, _headline, "Headline figures"), safe(ctx, _charts, "Energy and cost per token"),
                      safe(ctx, _pnl, "Revenue and loss")]
    return page


#: the measures of the headline cards and the per-chip table (ratios of sums, computed by site.js for the
#: current chip, model and date selection from the daily sums below)
MEASURES = [
    {"name": "requests", "sum": "requests"}, {"name": "tokens", "sum": "tokens"},
    {"name": "token_share", "share": "tokens"}, {"name": "energy_kwh", "sum": "energy_kwh"},
    {"name": "j_per_token", "ratio": ["energy_kwh", "tokens"], "k": 3.6e6},
    {"name": "usd_per_mtok", "ratio": ["cost_usd", "tokens"], "k": 1e6},
    {"name": "usage_usd_per_mtok", "ratio": ["usage_cost_usd", "tokens"], "k": 1e6},
    {"name": "cost_usd", "sum": "cost_usd"}, {"name": "usage_cost_usd", "sum": "usage_cost_usd"},
    {"name": "revenue_usd", "sum": "revenue_usd"}, {"name": "operating_loss_usd", "diff": ["cost_usd", "revenue_usd"]},
]
SUMS = ["requests", "tokens", "energy_kwh", "cost_usd", "usage_cost_usd", "revenue_usd"]
CARDS = [
    {"label": "Tokens served", "value": "tokens", "fmt": "big", "sub": "{} requests", "sub_value": "requests",
     "sub_fmt": "big"},
    {"label": "Energy", "value": "energy_kwh", "fmt": "num1", "unit": " kWh", "sub": "{} J/token",
     "sub_value": "j_per_token", "sub_fmt": "num3"},
    {"label": "Cost, allocation basis", "value": "usd_per_mtok", "fmt": "usd3", "unit": " /Mtok", "sub": "{} in total",
     "sub_value": "cost_usd", "sub_fmt": "usd"},
    {"label": "Cost, usage basis", "value": "usage_usd_per_mtok", "fmt": "usd3", "unit": " /Mtok",
     "sub": "{} in total", "sub_value": "usage_cost_usd", "sub_fmt": "usd"},
    {"label": "Revenue", "value": "revenue_usd", "fmt": "usd", "sub": "selected requests"},
    {"label": "Operating loss", "label_if_negative": "Operating profit", "value": "operating_loss_usd", "fmt": "usd",
     "abs": True, "sub": "cost − revenue (allocation basis)", "sub_if_negative": "revenue − cost (allocation basis)"},
]


def headline_data(wh) -> pd.DataFrame:
    """Daily sums per chip and model: the data of the headline cards and tables (cost per token mart,
    revenue from the request mart)."""
    rev = (f"left join (select date, chip, model, sum(revenue_usd) as revenue_usd from {REQ} group by all) r "
           "using (date, chip, model)" if wh.has(REQ) else "")
    return wh.df(f"""
        with c as (select date, chip, min(vendor) as vendor, model, sum(requests) as requests, sum(tokens) as tokens,
                          sum(energy_kwh) as energy_kwh, sum(cost_usd) as cost_usd,
                          sum(usage_cost_usd) as usage_cost_usd
                   from {CPT} group by date, chip, model)
        select strftime(c.date, '%Y-%m-%d') as date, c.chip, c.vendor, c.model, c.requests, c.tokens, c.energy_kwh,
               c.cost_usd, c.usage_cost_usd, {"coalesce(r.revenue_usd, 0)" if rev else "0.0"} as revenue_usd
        from c {rev} order by 1, 2, 4""")


def _headline(ctx: Ctx) -> Section:
    wh, pal = ctx.wh, ctx.pal
    sec = Section("Headline figures", "For the chip, model and dates selected in the bar above (all, at first).")
    note = no_data(wh, CPT)
    if note:
        sec.blocks.append(note)
        return sec
    df = headline_data(wh)
    data = columns(df)
    colors = {c: pal.chip_hex(c) for c in pal.chips}
    sec.blocks.append(Live("overview-cards", {"kind": "cards", "data": data, "dims": ["date"], "sums": SUMS,
                                              "measures": MEASURES, "cards": CARDS}))
    cols = [{"key": "chip", "label": "Chip", "swatch": True}, {"key": "vendor", "label": "Vendor"},
            {"key": "requests", "label": "Requests", "fmt": "big"}, {"key": "tokens", "label": "Tokens", "fmt": "big"},
            {"key": "token_share", "label": "Token share", "fmt": "pct1"},
            {"key": "j_per_token", "label": "J/token", "fmt": "num3"},
            {"key": "usd_per_mtok", "label": "USD/Mtok (allocation)", "fmt": "usd3"},
            {"key": "usage_usd_per_mtok", "label": "USD/Mtok (usage)", "fmt": "usd3"},
            {"key": "revenue_usd", "label": "Revenue", "fmt": "usd"},
            {"key": "cost_usd", "label": "Cost (allocation)", "fmt": "usd"},
            {"key": "operating_loss_usd", "label": "Operating loss (− = profit)", "fmt": "usd"}]
    sec.blocks.append(Live("overview-chips", {
        "kind": "table", "data": data, "dims": ["date"], "sums": SUMS, "measures": MEASURES,
        "group": ["chip", "vendor"], "columns": cols, "total": "Fleet", "colors": colors,
        "order": {"chip": pal.chips}, "sort": {"col": "chip", "desc": False},
        "caption": "Per chip, for the selection. USD/Mtok = US dollars per million tokens (prompt + completion)."}))

    if wh.has(PNL):
        v = wh.df(f"""select strftime(date, '%Y-%m-%d') as date, vendor, sum(tokens) as tokens,
                             sum(revenue_usd) as revenue_usd, sum(energy_cost_usd) as energy_cost_usd,
                             sum(hardware_cost_usd) as hardware_cost_usd, sum(total_cost_usd) as total_cost_usd
                      from {PNL} where vendor <> 'all' group by all order by 1, 2""")
        meas = [{"name": "tokens", "sum": "tokens"}, {"name": "token_share", "share": "tokens"},
                {"name": "revenue_usd", "sum": "revenue_usd"}, {"name": "energy_cost_usd", "sum": "energy_cost_usd"},
                {"name": "hardware_cost_usd", "sum": "hardware_cost_usd"},
                {"name": "total_cost_usd", "sum": "total_cost_usd"},
                {"name": "operating_loss_usd", "diff": ["total_cost_usd", "revenue_usd"]},
                {"name": "loss_per_mtok", "ratio": ["operating_loss_usd", "tokens"], "k": 1e6}]
        vcols = [{"key": "vendor", "label": "Vendor", "swatch": True}, {"key": "tokens", "label": "Tokens", "fmt": "big"},
                 {"key": "token_share", "label": "Token share", "fmt": "pct1"},
                 {"key": "revenue_usd", "label": "Revenue", "fmt": "usd"},
                 {"key": "energy_cost_usd", "label": "Energy cost", "fmt": "usd"},
                 {"key": "hardware_cost_usd", "label": "Hardware cost", "fmt": "usd"},
                 {"key": "total_cost_usd", "label": "Total cost", "fmt": "usd"},
                 {"key": "operating_loss_usd", "label": "Operating loss (− = profit)", "fmt": "usd"},
                 {"key": "loss_per_mtok", "label": "Loss per Mtok", "fmt": "usd3"}]
        v["operating_loss_usd"] = v.total_cost_usd - v.revenue_usd
        vd = columns(v)
        sec.blocks.append(Live("overview-vendors", {
            "kind": "table", "data": vd, "dims": ["date"], "sums": ["tokens", "revenue_usd", "energy_cost_usd",
                                                                    "hardware_cost_usd", "total_cost_usd",
                                                                    "operating_loss_usd"],
            "measures": meas, "group": ["vendor"], "columns": vcols, "total": "Fleet",
            "colors": {x: pal.vendor_hex(x) for x in pal.vendors}, "order": {"vendor": pal.vendors},
            "sort": {"col": "vendor", "desc": False},
            "caption": "Per vendor, from the daily P&L (the whole fleet bill, allocation basis), for the selected "
                       "dates and the selected chip's vendor; the P&L has no model dimension."}))
    return sec


def _charts(ctx: Ctx) -> Section:
    wh, pal = ctx.wh, ctx.pal
    sec = Section("Energy and cost per token")
    note = no_data(wh, CPT)
    if note:
        sec.blocks.append(note)
        return sec
    # daily sums, added up in the browser for the selected chip, model and dates
    daily = tidy(wh.df(f"""select strftime(date, '%Y-%m-%d') as date, chip, model, sum(energy_kwh) as energy_kwh,
                                  sum(tokens) as tokens, sum(cost_usd) as cost_usd, sum(usage_cost_usd) as usage_cost_usd
                           from {CPT} group by all having sum(tokens) > 0 order by all"""), 8)
    sec.blocks += [_j_per_token_chart(pal, daily), _cost_basis_chart(pal, daily), *_token_share_charts(wh, pal)]
    return sec


def _j_per_token_chart(pal, daily) -> Chart:
    base = alt.Chart().encode(
        x=alt.X("model:N", title="Model", axis=alt.Axis(labelAngle=0)),
        xOffset=alt.XOffset("chip:N", scale=alt.Scale(domain=pal.chips)),
        y=alt.Y("j_per_token:Q", title="Energy per token (J/token)"),
        tooltip=[alt.Tooltip("chip:N", title="Chip"), alt.Tooltip("model:N", title="Model"),
                 alt.Tooltip("j_per_token:Q", title="J/token", format=".3f"),
                 alt.Tooltip("tokens:Q", title="Tokens", format=",.0f")])
    ch = (base.mark_bar().encode(color=pal.chip_color())
          + base.mark_text(dy=-7, fontSize=11).encode(text=alt.Text("j_per_token:Q", format=".2f"))
          ).properties(title=alt.Title("Energy per token by chip and model",
                                       subtitle="Joules per token (prompt + completion), for the selection"),
                       width=theme.HALF_W, height=theme.HEIGHT)
    ch = alt.layer(*ch.layer, data=daily).properties(**{k: getattr(ch, k) for k in ("title", "width", "height")})
    ch = chip_filter(ch, model="model", date="date").transform_aggregate(
        energy_kwh="sum(energy_kwh)", tokens="sum(tokens)", groupby=["chip", "model"]
    ).transform_calculate(j_per_token="datum.energy_kwh * 3.6e6 / datum.tokens")
    return Chart("overview-j-per-token", ch, daily,
                            "Lower is better. Idle energy shared out to requests is included.", filter_by="chip")


def _cost_basis_chart(pal, daily) -> Chart:
    base = alt.Chart().encode(
        x=alt.X("chip:N", title="Chip", sort=pal.chips, axis=alt.Axis(labelAngle=0)),
        xOffset=alt.XOffset("basis:N", sort=["allocation", "usage"]),
        y=alt.Y("usd_per_mtok:Q", title="Cost (USD per million tokens)"),
        tooltip=[alt.Tooltip("chip:N", title="Chip"), alt.Tooltip("basis:N", title="Cost basis"),
                 alt.Tooltip("usd_per_mtok:Q", title="USD/Mtok", format="$.3f")])
    ch = (base.mark_bar().encode(
              color=pal.chip_color(legend=False),
              opacity=alt.Opacity("basis:N", title="Cost basis", sort=["allocation", "usage"],
                                  scale=alt.Scale(domain=["allocation", "usage"], range=[1.0, 0.45]),
                                  legend=alt.Legend(orient="top")))
          + base.mark_text(dy=-7, fontSize=11).encode(text=alt.Text("usd_per_mtok:Q", format="$.2f"))
          ).properties(title=alt.Title("Cost per million tokens by chip: allocation vs usage",
                                       subtitle="USD per million tokens, for the selection; solid = allocation, pale = usage"),
                       width=theme.HALF_W, height=theme.HEIGHT)
    ch = alt.layer(*ch.layer, data=daily).properties(**{k: getattr(ch, k) for k in ("title", "width", "height")})
    ch = chip_filter(ch, model="model", date="date").transform_aggregate(
        cost_usd="sum(cost_usd)", usage_cost_usd="sum(usage_cost_usd)", tokens="sum(tokens)", groupby=["chip"]
    ).transform_fold(["cost_usd", "usage_cost_usd"], as_=["column", "usd"]).transform_calculate(
        basis="datum.column == 'cost_usd' ? 'allocation' : 'usage'", usd_per_mtok="datum.usd / datum.tokens * 1e6")
    return Chart("overview-cost-basis", ch, daily,
                            "The gap between the bars is the cost of idle and unused capacity.", filter_by="chip")


def _token_share_charts(wh, pal) -> list[Chart]:
    share = wh.df(f"""select strftime(date, '%Y-%m-%d') as date, vendor, model, sum(tokens) as tokens
                      from {CPT} group by all order by all""")
    base = alt.Chart().encode(
        theta=alt.Theta("tokens:Q", stack=True),
        order=alt.Order("tokens:Q", sort="descending"),
        tooltip=[alt.Tooltip("vendor:N", title="Vendor"), alt.Tooltip("tokens:Q", title="Tokens", format=",.0f"),
                 alt.Tooltip("share_pct:Q", title="Share of tokens (%)", format=".1f")])
    ch = alt.layer(base.mark_arc(innerRadius=70, outerRadius=115, stroke="#fff", strokeWidth=2).encode(
                       color=pal.vendor_color()),
                   base.mark_text(radius=140, fontSize=13, fontWeight="bold").encode(text="label:N"), data=share
                   ).properties(title=alt.Title("Share of tokens served, by vendor",
                                                subtitle="Prompt + completion tokens, for the selection"),
                                width=theme.HALF_W, height=theme.HEIGHT + 40)
    # with a chip selected, its vendor's share is 100 %: the chart says so rather than show other chips
    ch = chip_filter(ch, "vendor", model="model", date="date").transform_aggregate(
        tokens="sum(tokens)", groupby=["vendor"]).transform_joinaggregate(total="sum(tokens)").transform_calculate(
        share_pct="datum.tokens / datum.total * 100",
        label="datum.vendor + ' ' + format(datum.share_pct, '.0f') + ' %'")
    pie = Chart("overview-token-share", ch, share, "Share of all tokens processed by each vendor's chips.",
                            filter_by="vendor")

    daily = tidy(wh.df(f"""select strftime(date, '%Y-%m-%d') as date, vendor, model, sum(tokens) / 1e6 as mtok
                           from {CPT} group by all order by date, vendor, model"""), 6)
    daily["k"] = daily.vendor.map(lambda v: pal.vendors.index(v) if v in pal.vendors else 99)
    ch = alt.Chart(daily).mark_bar().encode(
        x=day_x("date", dates=daily.date),
        y=alt.Y("mtok:Q", title="Tokens served (millions per day)", stack=True),
        color=pal.vendor_color(),
        order=alt.Order("k:Q"),
        tooltip=[tt_date("date"), alt.Tooltip("vendor:N", title="Vendor"),
                 alt.Tooltip("mtok:Q", title="Million tokens", format=",.2f"),
                 alt.Tooltip("share_pct:Q", title="Share of the day (%)", format=".1f")],
    ).properties(title=alt.Title("Tokens served per day, by vendor", subtitle="Million tokens per day, stacked"),
                 width=theme.HALF_W, height=theme.HEIGHT)
    # per model in the data, summed per vendor in the chart after the filters (model and dates too)
    ch = chip_filter(ch, "vendor", model="model", date="date").transform_aggregate(
        mtok="sum(mtok)", groupby=["date", "vendor", "k"]).transform_joinaggregate(
        day_mtok="sum(mtok)", groupby=["date"]).transform_calculate(share_pct="datum.mtok / datum.day_mtok * 100")
    bars = Chart("overview-tokens-daily", ch, daily,
                            "Weekly rhythm and growth of the traffic each vendor carries.", filter_by="vendor")
    return [pie, bars]


def _pnl(ctx: Ctx) -> Section:
    wh, pal = ctx.wh, ctx.pal
    sec = Section("Revenue and loss")
    note = no_data(wh, PNL)
    if note:
        sec.blocks.append(note)
        return sec
    fleet = wh.df(f"""select strftime(date, '%Y-%m-%d') as date, m.measure, m.usd
                      from {PNL}, lateral (values ('revenue', revenue_usd), ('total cost', total_cost_usd),
                                                  ('operating loss', operating_loss_usd)) m(measure, usd)
                      where vendor = 'all' order by date""")
    fleet = tidy(fleet)
    colors = {"revenue": "#333333", "total cost": theme.OKABE_ITO["orange"],
              "operating loss": theme.OKABE_ITO["reddish_purple"]}
    sel = alt.selection_point(fields=["measure"], bind="legend")
    ch = alt.Chart(fleet).mark_line(point=line_points(fleet.date, 25)).encode(
        x=utc_x("date", dates=fleet.date),
        y=alt.Y("usd:Q", title="Amount (USD per day)"),
        color=alt.Color("measure:N", title=None, scale=theme.ordinal_scale(colors, colors),
                        legend=alt.Legend(orient="top")),
        strokeDash=alt.StrokeDash("measure:N",
                                  scale=alt.Scale(domain=list(colors), range=[[1, 0], [1, 0], [6, 3]])),
        opacity=alt.condition(sel, alt.value(1), alt.value(0.15)),
        tooltip=[tt_date("date"), alt.Tooltip("measure:N", title="Measure"),
                 alt.Tooltip("usd:Q", title="USD", format="$,.2f")],
    ).add_params(sel).properties(
        title=alt.Title("Fleet revenue, cost and operating loss per day",
                        subtitle="USD per day, allocation cost basis; click the legend to highlight"),
        width=theme.HALF_W, height=theme.HEIGHT)
    sec.blocks.append(Chart("overview-pnl-daily", chip_filter(ch, None, date="date"), fleet,
                            "Operating loss = total cost − revenue (below zero: a profit). Follows the dates "
                            "selected; the fleet line is not split by chip.", filter_by="date"))

    byv = tidy(wh.df(f"""select strftime(date, '%Y-%m-%d') as date, vendor, operating_loss_usd as loss_usd,
                                revenue_usd, total_cost_usd
                         from {PNL} where vendor <> 'all' order by date, vendor"""))
    ch = alt.Chart(byv).mark_bar().encode(
        x=day_x("date", dates=byv.date),
        y=alt.Y("loss_usd:Q", title="Operating loss (USD per day)", stack=True),
        color=pal.vendor_color(),
        tooltip=[tt_date("date"), alt.Tooltip("vendor:N", title="Vendor"),
                 alt.Tooltip("loss_usd:Q", title="Operating loss (USD)", format="$,.2f"),
                 alt.Tooltip("revenue_usd:Q", title="Revenue (USD)", format="$,.2f"),
                 alt.Tooltip("total_cost_usd:Q", title="Total cost (USD)", format="$,.2f")],
    ).properties(title=alt.Title("Operating loss per day, by vendor", subtitle="USD per day, stacked"),
                 width=theme.HALF_W, height=theme.HEIGHT)
    sec.blocks.append(Chart("overview-loss-by-vendor", chip_filter(ch, "vendor", date="date"), byv,
                            "A bar below zero is a profit.", filter_by="vendor"))
    return sec
