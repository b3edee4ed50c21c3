"""The matching section on quality.html: per node and day, devices that report samples but serve no
request, requests whose devices report no samples, and requests the inference server counted that
the request telemetry lacks (or the reverse), with counts, from marts.fct_data_quality_daily."""
from __future__ import annotations

from dashboards.pages._core import Ctx, Html, Note, Section, fmt_num, html_table, no_data

DQ = "marts.fct_data_quality_daily"
#: the mart's reasons this section shows, with the column heading each gets
REASONS = {
    "devices with samples but no requests": "Devices with samples, no requests",
    "requests whose devices report no samples": "Requests on devices without samples",
    "requests counted by the server, missing from the request telemetry": "Requests the server counted, not in telemetry",
    "requests in the request telemetry the server did not count": "Requests in telemetry the server did not count",
    "replica-hours whose tokens differ from the server counters beyond tolerance": "Replica-hours beyond token tolerance",
    "server counter scrapes that map to no replica": "Server scrapes without a replica",
}
MAX_ROWS = 60


def section(ctx: Ctx) -> Section:
    wh = ctx.wh
    sec = Section("Devices, requests and server counters that do not match",
                  "Per node and UTC day: devices that report samples but served no request, requests whose "
                  "replica's devices report no samples (one machine named two ways by the exporter and the request "
                  "telemetry shows as both: see the host-name aliases in docs/collectors.md), and requests the "
                  "inference server counted itself (vllm:request_success_total, scraped) that the request telemetry "
                  "lacks, or the reverse.")
    note = no_data(wh, DQ)
    if note:
        sec.blocks.append(note)
        return sec
    reasons = list(REASONS)
    ph = ", ".join("?" for _ in reasons)
    df = wh.df(f"""select strftime(date, '%Y-%m-%d') as date, node, reason, sum(rows) as rows from {DQ}
                   where reason in ({ph}) group by all order by date, node""", reasons)
    if df.empty:
        sec.blocks.append(Note("Every device with samples served requests, every request's devices reported "
                               "samples, and the server counters match the request telemetry.", "info"))
        return sec
    wide = df.pivot_table(index=["date", "node"], columns="reason", values="rows", aggfunc="sum").reset_index()
    totals = {r: float(df.rows[df.reason == r].sum()) for r in reasons}
    sec.blocks.append(Note("; ".join(f"{REASONS[r].lower()}: {fmt_num(v)}" for r, v in totals.items() if v)
                           + " (whole period).", "info"))
    shown = wide.head(MAX_ROWS)
    rows = [[shown.date.iloc[i], shown.node.iloc[i]] + [fmt_num(_get(shown, i, k)) for k in reasons]
            for i in range(len(shown))]
    sec.blocks.append(Html(html_table(
        ["Date", "Node", *REASONS.values()], rows,
        caption=f"Node-days with anything unmatched (at most {MAX_ROWS}; all of them in marts.fct_data_quality_daily).",
        num_cols=set(range(2, 2 + len(REASONS))))))
    return sec


def _get(wide, i: int, col: str):
    if col not in wide.columns:
        return None
    v = wide[col].iloc[i]
    return None if v != v else v
