"""The Footprint page: the whole energy boundary of a request (accelerator, host, reserve, facility),
its carbon and water, beside the figures Google published for a median text prompt.

Reads marts.fct_request_footprint (per request), marts.fct_footprint_daily (per day, site, chip,
model, task, language) and marts.fct_footprint_node_daily (per node-day, with carbon by site).
"""
from __future__ import annotations

import altair as alt
import pandas as pd

from dashboards import theme
from dashboards.pages._core import (Chart, Ctx, Html, Live, Page, Section, chip_filter, columns, day_x, fmt_num,
                                    html_table, no_data, safe, tidy, tt_date)

REQ = "marts.fct_request_footprint"
DAILY = "marts.fct_footprint_daily"
NODE = "marts.fct_footprint_node_daily"
BOUNDARIES = ["accelerator", "host", "reserve", "facility"]
#: Google, "Measuring the environmental impact of delivering AI at Google scale", arXiv 2508.15734
#: (Aug 2025): the median Gemini Apps text prompt, and the split of its energy by boundary
GOOGLE = {"wh": 0.24, "gco2e": 0.03, "ml": 0.26,
          "split_pct": {"accelerator": 58, "host": 25, "reserve": 10, "facility": 8}}
GOOGLE_SOURCE = "Google, arXiv 2508.15734 (Aug 2025), median Gemini Apps text prompt, market-based carbon"


def build(ctx: Ctx) -> Page:
    page = Page("footprint", "Footprint", "The whole footprint of a request",
                "Accelerator joules are only part of a request's energy. The full boundary adds the host's CPU and "
                "DRAM, the reserve capacity that was provisioned but served nothing, and the facility overhead (PUE), "
                "then turns energy into carbon (location- and market-based) and water with each site's factors.")
    page.sections += [safe(ctx, _median, "Per request, beside the published figures"),
                      safe(ctx, _breakdown, "Boundary breakdown per chip and model"),
                      safe(ctx, _carbon_by_site, "Carbon per day by site")]
    return page


def _median(ctx: Ctx) -> Section:
    wh = ctx.wh
    sec = Section("Per request, beside the published figures",
                  "Median over every request of the period; the share split is by energy (all requests' joules of "
                  "each boundary over their full-boundary joules). Google's median prompt is a different workload "
                  "on different hardware: the comparison is of method and order of magnitude, not a benchmark.")
    note = no_data(wh, REQ)
    if note:
        sec.blocks.append(note)
        return sec
    r = wh.df(f"""select median(full_wh) as wh, median(accelerator_wh) as acc_wh,
                         median(full_market_gco2e) as g_mkt, median(full_location_gco2e) as g_loc,
                         median(full_water_ml) as ml, sum(full_j) as full_j,
                         {', '.join(f'sum({b}_j) as {b}_j' for b in BOUNDARIES)}
                  from {REQ}""").iloc[0]
    share = {b: (r[f"{b}_j"] / r.full_j * 100 if r.full_j else None) for b in BOUNDARIES}
    rows = [["Energy, full boundary (Wh)", fmt_num(r.wh, 3), fmt_num(GOOGLE["wh"], 2)],
            ["Energy, accelerator only (Wh)", fmt_num(r.acc_wh, 3), "–"],
            ["Carbon, market-based (gCO2e)", fmt_num(r.g_mkt, 3), fmt_num(GOOGLE["gco2e"], 2)],
            ["Carbon, location-based (gCO2e)", fmt_num(r.g_loc, 3), "–"],
            ["Water, on-site (mL)", fmt_num(r.ml, 3), fmt_num(GOOGLE["ml"], 2)]]
    rows += [[f"Share: {b} (%)", fmt_num(share[b], 1), fmt_num(GOOGLE["split_pct"][b], 0)] for b in BOUNDARIES]
    sec.blocks.append(Html(html_table(
        ["Per request (median)", "This fleet", "Google"], rows, num_cols={1, 2},
        caption="Medians over every request of the whole period, all chips and models: a median cannot be added "
                "up from per-day sums, so this table does not follow the filters (the breakdown per chip and model "
                f"below does, as means). Published figures: {GOOGLE_SOURCE}.")))
    return sec


def _breakdown(ctx: Ctx) -> Section:
    wh, pal = ctx.wh, ctx.pal
    sec = Section("Boundary breakdown per chip and model",
                  "Mean energy per request by boundary (Wh), and on the accelerator-only and full boundaries side by "
                  "side, with carbon and water per request and per thousand tokens.")
    note = no_data(wh, DAILY)
    if note:
        sec.blocks.append(note)
        return sec
    agg = wh.df(f"""select chip, model, sum(requests) as requests, sum(total_tokens) as tokens,
                           {', '.join(f'sum({b}_j) as {b}_j' for b in BOUNDARIES)}, sum(full_wh) as full_wh,
                           sum(accelerator_wh) as acc_wh, sum(full_market_gco2e) as g_mkt,
                           sum(full_location_gco2e) as g_loc, sum(accelerator_market_gco2e) as acc_g_mkt,
                           sum(full_water_ml) as ml, sum(accelerator_water_ml) as acc_ml
                    from {DAILY} where chip is not null group by all order by all""")
    long = pd.DataFrame([{"chip": a.chip, "model": a.model, "boundary": b,
                          "wh_per_request": getattr(a, f"{b}_j") / 3600 / a.requests if a.requests else 0.0}
                         for a in agg.itertuples() for b in BOUNDARIES])
    long = tidy(long, 5)
    ch = alt.Chart(long).mark_bar().encode(
        x=alt.X("chip:N", title=None, sort=pal.chips, axis=alt.Axis(labelAngle=0, labelFontSize=11)),
        y=alt.Y("wh_per_request:Q", title="Energy per request (Wh)", stack="zero"),
        color=alt.Color("boundary:N", title="Boundary", sort=BOUNDARIES,
                        scale=alt.Scale(domain=BOUNDARIES, range=["#4c78a8", "#f58518", "#9d755d", "#bab0ac"])),
        order=alt.Order("boundary_order:Q"),
        tooltip=[alt.Tooltip("chip:N", title="Chip"), alt.Tooltip("model:N", title="Model"),
                 alt.Tooltip("boundary:N", title="Boundary"),
                 alt.Tooltip("wh_per_request:Q", title="Wh per request", format=".4f")],
    ).transform_calculate(boundary_order=f"indexof({BOUNDARIES!r}, datum.boundary)").properties(
        width=theme.HALF_W - 80, height=220).facet(column=alt.Column("model:N", title=None)).properties(
        title=alt.Title("Energy per request by boundary", subtitle="Mean Wh per request; stacked: accelerator, host, "
                                                                  "reserve, facility"))
    sec.blocks.append(Chart("footprint-boundary-per-chip-model", chip_filter(ch), long,
                            "The accelerator bar alone is what an accelerator-only figure reports.", wide=True,
                            filter_by="chip"))
    sec.blocks.append(breakdown_table(ctx))
    return sec


#: per-request and per-token figures of the breakdown table: ratios of per-day sums
BREAKDOWN_SUMS = ["requests", "tokens", "acc_wh", "full_wh", "acc_g_mkt", "g_mkt", "g_loc", "acc_ml", "ml"]
BREAKDOWN_MEASURES = [
    {"name": "acc_wh_per_request", "ratio": ["acc_wh", "requests"]},
    {"name": "full_wh_per_request", "ratio": ["full_wh", "requests"]},
    {"name": "acc_g_mkt_per_request", "ratio": ["acc_g_mkt", "requests"]},
    {"name": "g_mkt_per_request", "ratio": ["g_mkt", "requests"]},
    {"name": "g_loc_per_request", "ratio": ["g_loc", "requests"]},
    {"name": "acc_ml_per_request", "ratio": ["acc_ml", "requests"]},
    {"name": "ml_per_request", "ratio": ["ml", "requests"]},
    {"name": "full_wh_per_1k_tokens", "ratio": ["full_wh", "tokens"], "k": 1000}]
BREAKDOWN_COLUMNS = [{"key": "chip", "label": "Chip", "swatch": True}, {"key": "model", "label": "Model"}] + [
    {"key": m["name"], "label": label, "fmt": "num4"} for m, label in zip(BREAKDOWN_MEASURES, (
        "Wh/request (accelerator)", "Wh/request (full)", "gCO2e/request (accelerator, market)",
        "gCO2e/request (full, market)", "gCO2e/request (full, location)", "mL/request (accelerator)",
        "mL/request (full)", "Wh per 1k tokens (full)"), strict=True)]


def breakdown_table(ctx: Ctx) -> Live:
    """Per chip and model: energy, carbon and water per request (and full Wh per thousand tokens) for the
    selected chip, model and dates, from per-day sums of marts.fct_footprint_daily added up in the browser."""
    wh, pal = ctx.wh, ctx.pal
    daily = wh.df(f"""select strftime(date, '%Y-%m-%d') as date, chip, model, sum(requests) as requests,
                             sum(total_tokens) as tokens, sum(accelerator_wh) as acc_wh, sum(full_wh) as full_wh,
                             sum(accelerator_market_gco2e) as acc_g_mkt, sum(full_market_gco2e) as g_mkt,
                             sum(full_location_gco2e) as g_loc, sum(accelerator_water_ml) as acc_ml,
                             sum(full_water_ml) as ml
                      from {DAILY} where chip is not null group by all having sum(requests) > 0 order by all""")
    return Live("footprint-breakdown-table", {
        "kind": "table", "data": columns(daily), "dims": ["date"], "sums": BREAKDOWN_SUMS,
        "measures": BREAKDOWN_MEASURES, "group": ["chip", "model"], "columns": BREAKDOWN_COLUMNS,
        "colors": {c: pal.chip_hex(c) for c in pal.chips}, "order": {"chip": pal.chips},
        "sort": {"col": "chip", "desc": False}, "csv": "footprint-breakdown.csv",
        "caption": "Means per request over the selected chip, model and dates (sums over the requests). "
                   "Accelerator only: the attributed accelerator energy, no PUE. Full: accelerator + host + "
                   "reserve + facility."})


def _carbon_by_site(ctx: Ctx) -> Section:
    wh = ctx.wh
    sec = Section("Carbon per day by site",
                  "Every node-day's whole boundary (including what no request was charged, such as a spare node) "
                  "times its site's intensity: location-based (the grid's average) and market-based (after "
                  "contracted clean energy).")
    note = no_data(wh, NODE)
    if note:
        sec.blocks.append(note)
        return sec
    df = tidy(wh.df(f"""select strftime(date, '%Y-%m-%d') as date, site, b.basis,
                               sum(case when b.basis = 'location' then location_gco2e else market_gco2e end) / 1000
                                   as kgco2e
                        from {NODE}, (values ('location'), ('market')) b(basis) group by all order by all"""), 5)
    base = alt.Chart(df).mark_bar().encode(
        x=day_x("date", dates=df.date, period=ctx.period),
        y=alt.Y("kgco2e:Q", title="Carbon (kgCO2e per day)", stack="zero"),
        color=alt.Color("site:N", title="Site"),
        tooltip=[tt_date("date"), alt.Tooltip("site:N", title="Site"), alt.Tooltip("basis:N", title="Basis"),
                 alt.Tooltip("kgco2e:Q", title="kgCO2e", format=",.3f")],
    ).properties(width=theme.HALF_W - 60, height=200)
    ch = alt.hconcat(*[chip_filter(base.transform_filter(alt.datum.basis == b), None, date="date").properties(
        title=alt.Title(f"{b.capitalize()}-based")) for b in ("location", "market")]).properties(
        title=alt.Title("Carbon per day by site", subtitle="kgCO2e per UTC day; location- and market-based"))
    sec.blocks.append(Chart("footprint-carbon-per-day-site", ch, df,
                            "Factors and their sources: warehouse/footprint/footprint.yaml.", wide=True,
                            filter_by="date"))
    return sec
