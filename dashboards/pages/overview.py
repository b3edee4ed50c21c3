"""index.html: the headline figures per chip and vendor."""
from __future__ import annotations


import altair as alt

from dashboards import theme
from dashboards.markup import h
from dashboards.pages._core import (Chart, Ctx, Html, Page, Section, chip_filter, fmt_big, fmt_num, fmt_usd,
                                    html_table, line_points, no_data, safe, tidy, tt_date, day_x, utc_x)

CPT = "marts.fct_cost_per_token_daily"
REQ = "marts.fct_request_energy"
PNL = "marts.fct_pnl_daily"


def build(ctx: Ctx) -> Page:
    page = Page("index", "Overview", "Fleet overview",
                "Headline figures per chip and vendor for the whole period in the warehouse: energy per token, "
                "cost per million tokens on both cost bases, revenue and operating loss. Allocation basis "
                "charges every joule and every hardware-hour, idle time included, to the requests; usage "
                "basis charges only what the requests used.")
    page.sections += [safe(ctx, _headline, "Headline figures"), safe(ctx, _charts, "Energy and cost per token"),
                      safe(ctx, _pnl, "Revenue and loss")]
    return page


def _headline(ctx: Ctx) -> Section:
    wh, pal = ctx.wh, ctx.pal
    sec = Section("Headline figures")
    note = no_data(wh, CPT)
    if note:
        sec.blocks.append(note)
        return sec
    tot = wh.one(f"""select sum(requests), sum(tokens), sum(energy_kwh), sum(cost_usd), sum(usage_cost_usd)
                     from {CPT}""")
    requests, tokens, kwh, cost, ucost = (float(x or 0) for x in tot)
    revenue = loss = None
    if wh.has(PNL):
        r = wh.one(f"select sum(revenue_usd), sum(operating_loss_usd) from {PNL} where vendor = 'all'")
        revenue, loss = r
    jpt = kwh * 3.6e6 / tokens if tokens else None
    cards = [
        ("Tokens served", fmt_big(tokens), f"{fmt_big(requests)} requests"),
        ("Energy", f"{fmt_num(kwh, 1)} kWh", f"{fmt_num(jpt, 3)} J/token"),
        ("Cost, allocation basis", fmt_usd(cost / tokens * 1e6 if tokens else None, 3) + " /Mtok",
         f"{fmt_usd(cost)} in total"),
        ("Cost, usage basis", fmt_usd(ucost / tokens * 1e6 if tokens else None, 3) + " /Mtok",
         f"{fmt_usd(ucost)} in total"),
        ("Revenue", fmt_usd(revenue), "all vendors"),
        ("Operating loss", fmt_usd(loss), "cost − revenue (allocation basis)"),
    ]
    sec.blocks.append(Html(h("div", *[h("div", h("div", a, class_="kpi-label"), h("div", b, class_="kpi-value"),
                                            h("div", c, class_="kpi-sub"), class_="kpi") for a, b, c in cards],
                             class_="kpis")))

    rev_join = ""
    if wh.has(REQ):
        rev_join = f"left join (select chip, sum(revenue_usd) as revenue from {REQ} group by chip) r using (chip)"
    df = wh.df(f"""
        with c as (select chip, min(vendor) as vendor, sum(requests) as requests, sum(tokens) as tokens,
                          sum(energy_kwh) as kwh, sum(cost_usd) as cost, sum(usage_cost_usd) as ucost
                   from {CPT} group by chip)
        select c.*, {"r.revenue" if rev_join else "null::double as revenue"}
        from c {rev_join}""")
    df["order"] = df["chip"].map(lambda c: pal.chips.index(c) if c in pal.chips else 99)
    df = df.sort_values("order")
    rows, sw = [], []
    for r in df.itertuples():
        t = float(r.tokens or 0)
        rows.append([r.chip, r.vendor, fmt_big(r.requests), fmt_big(t), fmt_num(100 * t / tokens if tokens else None, 1, " %"),
                     fmt_num(r.kwh * 3.6e6 / t if t else None, 3), fmt_usd(r.cost / t * 1e6 if t else None, 3),
                     fmt_usd(r.ucost / t * 1e6 if t else None, 3), fmt_usd(r.revenue), fmt_usd(r.cost),
                     fmt_usd(r.cost - r.revenue if r.revenue is not None and r.revenue == r.revenue else None)])
        sw.append(pal.chip_hex(r.chip))
    rows.append(["Fleet", "all", fmt_big(requests), fmt_big(tokens), "100.0 %", fmt_num(jpt, 3),
                 fmt_usd(cost / tokens * 1e6 if tokens else None, 3), fmt_usd(ucost / tokens * 1e6 if tokens else None, 3),
                 fmt_usd(revenue), fmt_usd(cost), fmt_usd(loss)])
    sw.append("")
    sec.blocks.append(Html(html_table(
        ["Chip", "Vendor", "Requests", "Tokens", "Token share", "J/token", "USD/Mtok (allocation)",
         "USD/Mtok (usage)", "Revenue", "Cost (allocation)", "Operating loss"],
        rows, caption="Per chip, whole period. USD/Mtok = US dollars per million tokens (prompt + completion).",
        num_cols=set(range(2, 11)), swatches={0: sw}, total_last=True)))

    if wh.has(PNL):
        v = wh.df(f"""select vendor, sum(tokens) as tokens, sum(revenue_usd) as revenue,
                             sum(energy_cost_usd) as energy, sum(hardware_cost_usd) as hardware,
                             sum(total_cost_usd) as cost, sum(operating_loss_usd) as loss
                      from {PNL} group by vendor""")
        v["order"] = v["vendor"].map(lambda x: 99 if x == "all" else (pal.vendors.index(x) if x in pal.vendors else 50))
        v = v.sort_values("order")
        vt = float(v.loc[v.vendor != "all", "tokens"].sum()) or None
        vrows, vsw = [], []
        for r in v.itertuples():
            vrows.append(["Fleet" if r.vendor == "all" else r.vendor, fmt_big(r.tokens),
                          fmt_num(100 * r.tokens / vt if vt else None, 1, " %"), fmt_usd(r.revenue),
                          fmt_usd(r.energy), fmt_usd(r.hardware), fmt_usd(r.cost), fmt_usd(r.loss),
                          fmt_usd(r.loss / r.tokens * 1e6 if r.tokens else None, 3)])
            vsw.append("" if r.vendor == "all" else pal.vendor_hex(r.vendor))
        sec.blocks.append(Html(html_table(
            ["Vendor", "Tokens", "Token share", "Revenue", "Energy cost", "Hardware cost", "Total cost",
             "Operating loss", "Loss per Mtok"],
            vrows, caption="Per vendor, whole period, from the daily P&L (allocation basis).",
            num_cols=set(range(1, 9)), swatches={0: vsw}, total_last=v.vendor.iloc[-1] == "all")))
    return sec


def _charts(ctx: Ctx) -> Section:
    wh, pal = ctx.wh, ctx.pal
    sec = Section("Energy and cost per token")
    note = no_data(wh, CPT)
    if note:
        sec.blocks.append(note)
        return sec
    jpt = tidy(wh.df(f"""select chip, model, sum(energy_kwh) * 3.6e6 / sum(tokens) as j_per_token,
                                sum(tokens) as tokens
                         from {CPT} group by all having sum(tokens) > 0 order by all"""))
    base = alt.Chart(jpt).encode(
        x=alt.X("model:N", title="Model", axis=alt.Axis(labelAngle=0)),
        xOffset=alt.XOffset("chip:N", scale=alt.Scale(domain=pal.chips)),
        y=alt.Y("j_per_token:Q", title="Energy per token (J/token)"),
        tooltip=[alt.Tooltip("chip:N", title="Chip"), alt.Tooltip("model:N", title="Model"),
                 alt.Tooltip("j_per_token:Q", title="J/token", format=".3f"),
                 alt.Tooltip("tokens:Q", title="Tokens", format=",.0f")])
    ch = (base.mark_bar().encode(color=pal.chip_color())
          + base.mark_text(dy=-7, fontSize=11).encode(text=alt.Text("j_per_token:Q", format=".2f"))
          ).properties(title=alt.Title("Energy per token by chip and model",
                                       subtitle="Joules per token (prompt + completion), whole period"),
                       width=theme.HALF_W, height=theme.HEIGHT)
    sec.blocks.append(Chart("overview-j-per-token", chip_filter(ch), jpt,
                            "Lower is better. Idle energy shared out to requests is included.", filter_by="chip"))

    cb = wh.df(f"""select chip, 'allocation' as basis, sum(cost_usd) / sum(tokens) * 1e6 as usd_per_mtok
                   from {CPT} group by all having sum(tokens) > 0
                   union all
                   select chip, 'usage', sum(usage_cost_usd) / sum(tokens) * 1e6 from {CPT}
                   group by all having sum(tokens) > 0""")
    cb = tidy(cb)
    base = alt.Chart(cb).encode(
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
                                       subtitle="USD per million tokens, whole period; solid = allocation, pale = usage"),
                       width=theme.HALF_W, height=theme.HEIGHT)
    sec.blocks.append(Chart("overview-cost-basis", chip_filter(ch), cb,
                            "The gap between the bars is the cost of idle and unused capacity.", filter_by="chip"))

    share = wh.df(f"""select vendor, sum(tokens) as tokens, sum(tokens) / sum(sum(tokens)) over () * 100 as share_pct
                      from {CPT} group by vendor order by tokens desc""")
    share = tidy(share)
    share["label"] = [f"{v} {s:.0f} %" for v, s in zip(share.vendor, share.share_pct)]
    base = alt.Chart(share).encode(
        theta=alt.Theta("tokens:Q", stack=True),
        order=alt.Order("tokens:Q", sort="descending"),
        tooltip=[alt.Tooltip("vendor:N", title="Vendor"), alt.Tooltip("tokens:Q", title="Tokens", format=",.0f"),
                 alt.Tooltip("share_pct:Q", title="Share of tokens (%)", format=".1f")])
    ch = (base.mark_arc(innerRadius=70, outerRadius=115, stroke="#fff", strokeWidth=2).encode(
              color=pal.vendor_color())
          + base.mark_text(radius=140, fontSize=13, fontWeight="bold").encode(text="label:N")
          ).properties(title=alt.Title("Share of tokens served, by vendor", subtitle="Prompt + completion tokens, whole period"),
                       width=theme.HALF_W, height=theme.HEIGHT + 40)
    sec.blocks.append(Chart("overview-token-share", ch, share, "Share of all tokens processed by each vendor's chips."))

    daily = tidy(wh.df(f"""select strftime(date, '%Y-%m-%d') as date, vendor, sum(tokens) / 1e6 as mtok,
                                  sum(tokens) * 100.0 / sum(sum(tokens)) over (partition by date) as share_pct
                           from {CPT} group by date, vendor order by date, vendor"""), 5)
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
    sec.blocks.append(Chart("overview-tokens-daily", chip_filter(ch, "vendor"), daily,
                            "Weekly rhythm and growth of the traffic each vendor carries.", filter_by="vendor"))
    return sec


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
    sec.blocks.append(Chart("overview-pnl-daily", ch, fleet, "Operating loss = total cost − revenue."))

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
    sec.blocks.append(Chart("overview-loss-by-vendor", chip_filter(ch, "vendor"), byv,
                            "A bar below zero would be a profit.", filter_by="vendor"))
    return sec
