"""forecast.html: the operating-loss forecast with 80/95 % bands, scenarios side by side, backtest error."""
from __future__ import annotations


import altair as alt
import pandas as pd

from dashboards import theme
from dashboards.markup import md_code
from dashboards.pages._core import (Chart, Ctx, Html, Note, Page, Section, fmt_num, html_table, no_data, ordinal, safe,
                                    tidy, tt_date, utc_x)
from dashboards.pages.forecast_coverage import band_coverage_caption
from dashboards.pages.forecast_coverage import sections as coverage_sections  # coverage next to the bands

FC = "marts.fct_loss_forecast"
HIST_COLOR = "#222222"
FC_COLOR = theme.OKABE_ITO["orange"]
#: scenario colours: Okabe-Ito and Tol colours that no chip uses, dark enough for a line on white
SCENARIO_COLORS = [theme.OKABE_ITO["orange"], theme.OKABE_ITO["reddish_purple"], "#332288", "#777777", "#882255",
                   "#999933", "#AA4499", "#B5651D"]
BASELINES = ("baseline", "base", "current", "status-quo")


def build(ctx: Ctx) -> Page:
    page = Page("forecast", "Forecast", "Loss forecast",
                "Operating loss (total cost minus revenue) projected forward per scenario, with 80 % and 95 % "
                "prediction intervals, and how far the model was off when it forecast the past (backtest).")
    page.sections += [safe(ctx, _bands, "Forecast per scenario"), *coverage_sections(ctx),
                      safe(ctx, _compare, "Scenarios side by side"), safe(ctx, _backtest, "Backtest error")]
    return page


#: at most this many points per scenario and kind in the daily charts: longer series show every k-th day
MAX_POINTS = 120


def _grain(ctx: Ctx, prefer: str = "day") -> str:
    grains = [g for (g,) in ctx.wh.con.execute(f"select distinct grain from {FC} where grain is not null").fetchall()]
    return prefer if prefer in grains else ("day" if "day" in grains else sorted(grains)[0])


def _scenarios(ctx: Ctx) -> list[str]:
    rows = ctx.wh.con.execute(f"select distinct scenario from {FC} order by scenario").fetchall()
    names = [r[0] for r in rows]
    # the baseline first when there is one
    return sorted(names, key=lambda s: (s not in BASELINES, s))


def _unit(grain: str) -> str:
    return {"day": "USD per day", "month": "USD per month", "week": "USD per week"}.get(grain, f"USD per {grain}")


def _bands(ctx: Ctx) -> Section:
    wh = ctx.wh
    sec = Section("Forecast per scenario")
    note = no_data(wh, FC)
    if note:
        sec.blocks.append(note)
        return sec
    grain = _grain(ctx)
    scen = _scenarios(ctx)
    n = wh.one(f"select max(c) from (select count(*) as c from {FC} where grain = ? group by scenario, kind)",
               [grain])[0] or 0
    k = max(1, -(-n // MAX_POINTS))
    cov_cols = ("coverage_horizon_days, coverage80_pct, coverage95_pct" if "coverage80_pct" in wh.columns(FC) else
                "null::integer as coverage_horizon_days, null::double as coverage80_pct, null::double as coverage95_pct")
    df = tidy(wh.df(f"""
        with f as (select *, row_number() over (partition by scenario, kind order by period_start desc) - 1 as i
                   from {FC} where grain = ?)
        select scenario, strftime(period_start, '%Y-%m-%d') as period_start, kind, loss_usd,
               lo80_usd, hi80_usd, lo95_usd, hi95_usd, {cov_cols}
        from f where i % {k} = 0 or (kind = 'forecast' and i = (select max(i) from f f2
                                                                where f2.scenario = f.scenario and f2.kind = f.kind))
        order by scenario, period_start""", [grain]), 5)
    ncol = min(3, len(scen))
    w = max(230, (theme.FULL_W - 30 * ncol) // ncol)
    base = alt.Chart().encode(x=utc_x("period_start", "Date (UTC)" if grain == "day" else "Period start (UTC)",
                                      dates=df.period_start))
    fc = base.transform_filter("datum.kind == 'forecast'")
    tip = _band_tooltip()
    # fewest points of a scenario's history / forecast: a line through one point draws nothing, so a
    # series that short gets points (one day of history), and bands over one period become error bars
    per = df.groupby(["scenario", "kind"]).size()
    n_hist = int(per.xs("history", level="kind").min()) if "history" in per.index.get_level_values("kind") else 0
    n_fc = int(per.xs("forecast", level="kind").min()) if "forecast" in per.index.get_level_values("kind") else 0
    has = {lv: bool((df[f"lo{lv}_usd"].notna() & df[f"hi{lv}_usd"].notna()).any()) for lv in (95, 80)}
    y_title = f"Operating loss ({_unit(grain)})"
    layers = []
    for lv, opacity in ((95, 0.18), (80, 0.35)):
        if not has[lv]:  # all null (too little history for intervals): no band, and no "Infinite extent"
            continue
        enc = {"y": alt.Y(f"lo{lv}_usd:Q", title=y_title), "y2": f"hi{lv}_usd:Q"}
        mark = (fc.mark_area(color=FC_COLOR, opacity=opacity) if n_fc > 1 else
                fc.mark_bar(color=FC_COLOR, opacity=opacity, size=14))
        layers.append(mark.encode(**enc))
    layers += [  # history last, so a one-day history's point is not hidden under the forecast line
        fc.mark_line(color=FC_COLOR, strokeWidth=2.2,
                     point=alt.OverlayMarkDef(color=FC_COLOR, size=60, filled=True) if n_fc <= 1 else False
                     ).encode(y=alt.Y("loss_usd:Q", title=y_title), tooltip=tip),
        base.transform_filter("datum.kind == 'history'").mark_line(
            color=HIST_COLOR, strokeWidth=1.8,
            # a short history is a few pixels at the left of a long horizon: points keep it visible
            point=alt.OverlayMarkDef(color=HIST_COLOR, size=60 if n_hist <= 1 else 22, filled=True)
            if n_hist <= 12 else False).encode(
            y=alt.Y("loss_usd:Q", title=y_title), tooltip=tip),
    ]
    layer = alt.layer(*layers, data=df).properties(width=w, height=230)
    if not (has[80] or has[95]):
        sec.blocks.append(_no_intervals_note(wh, grain))
    if has[80] or has[95]:
        sub = ("Black: history. Orange: forecast, with 80 % (darker) and 95 % (lighter) prediction intervals"
               + ("" if n_fc > 1 else " as bars"))
    else:
        sub = "Black: history. Orange: point forecast (no prediction intervals in the warehouse)"
    ch = layer.facet(facet=alt.Facet("scenario:N", title=None, sort=scen, header=alt.Header(labelFontSize=13)),
                     columns=ncol, spacing={"row": 24, "column": 16}).properties(
        title=alt.Title(f"Operating loss forecast per scenario ({grain}ly)" if grain != "day" else
                        "Operating loss forecast per scenario (daily)",
                        subtitle=sub + (f"; every {ordinal(k)} {grain} shown" if k > 1 else "")))
    cap = ("A wider band means a less certain forecast. " + band_coverage_caption(ctx) if has[80] or has[95]
           else "Point forecasts only: no intervals yet.")
    sec.blocks.append(Chart("forecast-bands", ch, df, cap +
                            (f" The CSV has every {ordinal(k)} {grain}, as drawn; the warehouse has all." if k > 1 else ""),
                            wide=True))
    return sec


def _band_tooltip() -> list:
    """The bands chart's tooltip: the row's loss and bounds, and the coverage measured for its horizon."""
    return [alt.Tooltip("scenario:N", title="Scenario"), tt_date("period_start", "Period"),
            alt.Tooltip("kind:N", title="Kind"), alt.Tooltip("loss_usd:Q", title="Loss (USD)", format="$,.2f"),
            alt.Tooltip("lo80_usd:Q", title="80 % low", format="$,.2f"),
            alt.Tooltip("hi80_usd:Q", title="80 % high", format="$,.2f"),
            alt.Tooltip("lo95_usd:Q", title="95 % low", format="$,.2f"),
            alt.Tooltip("hi95_usd:Q", title="95 % high", format="$,.2f"),
            alt.Tooltip("coverage_horizon_days:Q", title="Coverage measured at (days ahead)"),
            alt.Tooltip("coverage80_pct:Q", title="80 % band held (backtest, %)", format=".0f"),
            alt.Tooltip("coverage95_pct:Q", title="95 % band held (backtest, %)", format=".0f")]


def _no_intervals_note(wh, grain: str) -> Note:
    """Why the forecast charts have no bands: the models and the days of history they had."""
    models = [m for (m,) in wh.con.execute(
        f"select distinct model from {FC} where grain = ? and kind = 'forecast' and model is not null "
        "order by 1", [grain]).fetchall()]
    hist_days = wh.one(f"select count(distinct period_start) from {FC} where grain = 'day' and kind = 'history'")[0]
    return Note(
        md_code("No prediction intervals yet: `marts.fct_loss_forecast` has no 80 % or 95 % bounds "
                "(`lo80_usd`, `hi80_usd`, `lo95_usd`, `hi95_usd` are empty)")
        + (f", from {hist_days} day{'s' if hist_days != 1 else ''} of history" if hist_days else "")
        + (f"; forecast model: {', '.join(models)}" if models else "")
        + ". The charts show point forecasts only; the bands appear once there is enough history to fit a "
          "model with intervals.", "info")


def _compare(ctx: Ctx) -> Section:
    wh = ctx.wh
    sec = Section("Scenarios side by side")
    note = no_data(wh, FC)
    if note:
        sec.blocks.append(note)
        return sec
    grain = _grain(ctx, prefer="month")
    scen = _scenarios(ctx)
    colors = dict(zip(scen, SCENARIO_COLORS * 3))
    df = tidy(wh.df(f"""
        select scenario, strftime(period_start, '%Y-%m-%d') as period_start, kind, loss_usd
        from {FC} where grain = ? and kind = 'forecast'
        union all
        select 'history', strftime(period_start, '%Y-%m-%d'), 'history', avg(loss_usd)
        from {FC} where grain = ? and kind = 'history' group by period_start
        order by 1, 2""", [grain, grain]), 5)
    has_hist = bool((df.kind == "history").any())
    dom = (["history"] if has_hist else []) + scen
    rng = ([HIST_COLOR] if has_hist else []) + [colors[s] for s in scen]
    sel = alt.selection_point(fields=["scenario"], bind="legend")
    # points on monthly lines, and on a daily history of one day (a line through one point draws nothing)
    ch = alt.Chart(df).mark_line(strokeWidth=2, point=grain != "day" or int((df.kind == "history").sum()) == 1).encode(
        x=utc_x("period_start", "Date (UTC)" if grain == "day" else "Month (UTC)", dates=df.period_start),
        y=alt.Y("loss_usd:Q", title=f"Operating loss ({_unit(grain)})"),
        color=alt.Color("scenario:N", title=None, scale=alt.Scale(domain=dom, range=rng), sort=dom,
                        legend=alt.Legend(orient="top")),
        opacity=alt.condition(sel, alt.value(1), alt.value(0.15)),
        tooltip=[alt.Tooltip("scenario:N", title="Scenario"), tt_date("period_start", "Period"),
                 alt.Tooltip("loss_usd:Q", title="Loss (USD)", format="$,.2f")],
    ).add_params(sel).properties(
        title=alt.Title("Forecast operating loss by scenario", subtitle=f"Point forecasts, {_unit(grain)}; "
                                                                         "click the legend to highlight"),
        width=theme.FULL_W - 60, height=theme.HEIGHT + 20)
    sec.blocks.append(Chart("forecast-scenarios", ch, df, "Point forecasts only; the bands are on the charts above.",
                            wide=True))

    tot = tidy(wh.df(f"""
        select scenario, sum(loss_usd) as loss_usd, sum(lo80_usd) as lo80_sum, sum(hi80_usd) as hi80_sum,
               count(*) as periods, strftime(min(period_start), '%Y-%m-%d') as first_period,
               strftime(max(period_start), '%Y-%m-%d') as last_period
        from {FC} where grain = ? and kind = 'forecast' group by scenario""", [grain]), 6)
    horizon = (f"{tot.first_period.min()} to {tot.last_period.max()}" if len(tot) else "")
    lo = float(min(0.0, tot.loss_usd.min())) if len(tot) else 0.0
    hi = float(max(0.0, tot.loss_usd.max())) if len(tot) else 1.0
    xscale = alt.Scale(domain=[lo * 1.05, hi * 1.3 if hi > 0 else 1.0], nice=False)  # room for the labels
    base = alt.Chart(tot).encode(
        y=alt.Y("scenario:N", title=None, sort=scen),
        x=alt.X("loss_usd:Q", title="Forecast operating loss over the horizon (USD)", axis=alt.Axis(format="$,.0f"),
                scale=xscale),
        tooltip=[alt.Tooltip("scenario:N", title="Scenario"),
                 alt.Tooltip("loss_usd:Q", title="Total (USD)", format="$,.2f"),
                 alt.Tooltip("periods:Q", title=f"{grain.capitalize()}s"),
                 alt.Tooltip("first_period:N", title="From"), alt.Tooltip("last_period:N", title="To")])
    ch = alt.layer(
        base.mark_bar(height={"band": 0.6}).encode(
            color=alt.Color("scenario:N", scale=alt.Scale(domain=dom, range=rng), legend=None)),
        base.mark_text(align="left", dx=4, fontSize=12).encode(
            x=alt.X("label_x:Q", scale=xscale), text=alt.Text("loss_usd:Q", format="$,.0f")
        ).transform_calculate(label_x="max(0, datum.loss_usd)"),
    ).properties(title=alt.Title("Total forecast loss, by scenario", subtitle=f"Sum of point forecasts, {horizon}"),
                 width=theme.HALF_W - 60, height=max(120, 46 * len(scen)))
    sec.blocks.append(Chart("forecast-scenario-totals", ch, tot,
                            "Sums of point forecasts; the intervals of single periods do not add up."))
    return sec


def _backtest(ctx: Ctx) -> Section:
    wh = ctx.wh
    sec = Section("Backtest error",
                  "MAPE: mean absolute percentage error of forecasts made on past data against what happened.")
    note = no_data(wh, FC)
    if note:
        sec.blocks.append(note)
        return sec
    scen = _scenarios(ctx)
    scale = "max(interval_scale)" if "interval_scale" in wh.columns(FC) else "null::double"
    df = tidy(wh.df(f"""select scenario, grain, min(model) as model, avg(backtest_mape) as backtest_mape_pct,
                               {scale} as interval_scale
                        from {FC} where backtest_mape is not null and not isnan(backtest_mape) group by scenario, grain
                        order by scenario, grain"""), 4)
    if df.empty:
        sec.blocks.append(Note(md_code("No backtest error recorded in `marts.fct_loss_forecast.backtest_mape` yet.")))
        return sec
    grains = sorted(df.grain.unique())
    base = alt.Chart(df).encode(
        y=alt.Y("scenario:N", title=None, sort=scen),
        yOffset=alt.YOffset("grain:N", sort=grains),
        x=alt.X("backtest_mape_pct:Q", title="Backtest error (MAPE, %)",
                scale=alt.Scale(domain=[0, float(df.backtest_mape_pct.max()) * 1.2 or 1.0], nice=False)),
        tooltip=[alt.Tooltip("scenario:N", title="Scenario"), alt.Tooltip("grain:N", title="Grain"),
                 alt.Tooltip("model:N", title="Model"),
                 alt.Tooltip("backtest_mape_pct:Q", title="MAPE (%)", format=".1f")])
    ch = alt.layer(
        base.mark_bar(height={"band": 0.85}).encode(
            color=alt.Color("grain:N", title="Grain", sort=grains,
                            scale=alt.Scale(domain=grains, range=["#555555", "#AAAAAA", "#CC79A7"][:len(grains)]),
                            legend=alt.Legend(orient="top"))),
        base.mark_text(align="left", dx=4, fontSize=11).encode(text=alt.Text("backtest_mape_pct:Q", format=".1f")),
    ).properties(title=alt.Title("Backtest error by scenario", subtitle="Mean absolute percentage error (%), per grain"),
                 width=theme.HALF_W - 40, height=max(120, 24 * len(scen) * len(grains)))
    sec.blocks.append(Chart("forecast-backtest", ch, df, "Lower is better."))
    rows = [[r.scenario, r.grain, r.model or "–", fmt_num(r.backtest_mape_pct, 1),
             "–" if pd.isna(r.interval_scale) else f"×{r.interval_scale:.2f}"] for r in df.itertuples()]
    sec.blocks.append(Html(html_table(["Scenario", "Grain", "Model", "Backtest MAPE (%)",
                                       "80 % band / model's own (day 1)"], rows, num_cols={3, 4},
                                      caption="The bands are set from the forecast's own past errors: the method "
                                              "was run from earlier days, and the spread of its misses at each "
                                              "horizon (per unit of the model's own standard deviation) gives the "
                                              "band, plus the uncertainty of the growth rate. The last column: "
                                              "that band's half-width 1 day ahead over the half-width of the "
                                              "model's own 80 % interval (×1.00: the model's interval was right). "
                                              "Fleet-level by nature: the forecast is of the whole fleet's loss, "
                                              "not per chip, model or a chosen date range."),
                           wide=False))
    return sec
