"""Forecast page section: do the bands hold? Empirical coverage of the 80 % and 95 % bands from
rolling-origin backtests (warehouse/money/backtest.py, marts.fct_forecast_coverage)."""
from __future__ import annotations

import altair as alt

from dashboards import theme
from dashboards.pages._core import Chart, Ctx, Html, Note, Section, html_table, no_data, safe, tidy

COV = "marts.fct_forecast_coverage"


def sections(ctx: Ctx) -> list[Section]:
    """The section forecast.py shows next to the bands."""
    return [safe(ctx, _coverage, "Do the bands hold?")]


#: the horizon whose coverage the bands chart quotes (the issue's yardstick), when it was measured
CAPTION_HORIZON_DAYS = 7


def band_coverage_caption(ctx: Ctx) -> str:
    """One sentence for the bands chart: how often each scenario's 80 % and 95 % bands held the
    actual loss in the rolling-origin backtest, ``CAPTION_HORIZON_DAYS`` days ahead (else the
    longest measured horizon); empty when nothing was measured."""
    wh = ctx.wh
    if no_data(wh, COV):
        return ""
    rows = wh.con.execute(f"""
        with m as (select * from {COV} where origins > 0 and coverage_pct is not null),
             h as (select scenario, coalesce(max(horizon_days) filter (where horizon_days = ?), max(horizon_days)) as hz
                   from m group by scenario)
        select m.scenario, m.horizon_days, m.level_pct, m.coverage_pct, m.origins
        from m join h on h.scenario = m.scenario and h.hz = m.horizon_days
        order by m.scenario, m.level_pct""", [CAPTION_HORIZON_DAYS]).fetchall()
    per: dict[tuple, list[str]] = {}
    for scen, hz, lv, pct, n in rows:
        per.setdefault((scen, hz, n), []).append(f"{lv} % band {pct:.0f} %")
    if not per:
        return ""
    parts = [f"{scen}: {', '.join(v)} ({hz} d ahead, {n} origins)" for (scen, hz, n), v in per.items()]
    return "Backtest coverage (share of past forecasts the band held): " + "; ".join(parts) + "."


def _coverage(ctx: Ctx) -> Section:
    wh = ctx.wh
    sec = Section("Do the bands hold?",
                  "The same method was run from past days on only the history before them, and its bands "
                  "compared with what happened 1, 7 and 30 days later. A calibrated 80 % band holds the actual "
                  "loss about 80 % of the time. The bands include the uncertainty of the growth rate (a bootstrap "
                  "of the trend), so they widen with the horizon.")
    note = no_data(wh, COV)
    if note:
        sec.blocks.append(note)
        return sec
    df = tidy(wh.df(f"""select scenario, horizon_days, level_pct, origins, covered, coverage_pct,
                               cast(horizon_days as varchar) || ' d' as horizon
                        from {COV} order by scenario, horizon_days, level_pct"""), 4)
    measured = df[df.origins > 0]
    if measured.empty:  # one line, not a table of "– / 0/0" rows
        sec.blocks.append(Note("The history is too short for a rolling-origin backtest at any horizon yet."))
        return sec
    hz = [f"{h} d" for h in sorted(measured.horizon_days.unique())]
    base = alt.Chart(measured).encode(
        x=alt.X("horizon:N", title="Horizon", sort=hz),
        xOffset=alt.XOffset("level_pct:N"),
        tooltip=[alt.Tooltip("scenario:N", title="Scenario"), alt.Tooltip("horizon:N", title="Horizon"),
                 alt.Tooltip("level_pct:Q", title="Band (%)"),
                 alt.Tooltip("coverage_pct:Q", title="Coverage (%)", format=".0f"),
                 alt.Tooltip("covered:Q", title="Covered"), alt.Tooltip("origins:Q", title="Origins")])
    bars = base.mark_bar().encode(
        y=alt.Y("coverage_pct:Q", title="Empirical coverage (%)", scale=alt.Scale(domain=[0, 100])),
        color=alt.Color("level_pct:N", title="Band (%)",
                        scale=alt.Scale(domain=[80, 95], range=[theme.OKABE_ITO["orange"], "#777777"]),
                        legend=alt.Legend(orient="top")))
    nominal = base.mark_tick(thickness=2, color="#222222", size=18).encode(y="level_pct:Q")
    ch = alt.layer(bars, nominal).properties(width=110, height=160).facet(
        facet=alt.Facet("scenario:N", title=None), columns=3).properties(
        title=alt.Title("Empirical coverage of the bands, by horizon",
                        subtitle="Bars: share of backtest origins whose actual loss fell inside the band; "
                                 "black tick: the band's nominal level"))
    sec.blocks.append(Chart("forecast-coverage", ch, measured,
                            "Below the tick: the band is too narrow; far above: too wide.", wide=True))
    rows = [[r.scenario, f"{r.horizon_days} d", f"{r.level_pct} %",
             "–" if r.coverage_pct is None or r.coverage_pct != r.coverage_pct else f"{r.coverage_pct:.0f} %",
             f"{r.covered}/{r.origins}"] for r in df.itertuples()]
    sec.blocks.append(Html(html_table(["Scenario", "Horizon", "Band", "Coverage", "Covered / origins"], rows,
                                      num_cols={3, 4},
                                      caption="Rolling-origin backtest: each origin is fitted only on the days "
                                              "before it. – : the history is too short for that horizon. "
                                              "Fleet-level by nature: the backtest scores the forecast of the whole "
                                              "fleet's loss over the whole history, not per chip, model or a "
                                              "chosen date range.")))
    return sec
