"""The $/Mtok table on cost.html: chip x model x task x tier, both cost bases, sortable, with a CSV of
the selection. Sums per day come from the request mart (aggregated in DuckDB); the browser adds them
up for the selected chip, model and dates (assets/site.js)."""
from __future__ import annotations

from dashboards.pages._core import Ctx, Live, Section, columns, no_data

REQ = "marts.fct_request_energy"
SUMS = ["requests", "tokens", "energy_kwh", "cost_usd", "usage_cost_usd"]
MEASURES = [
    {"name": "requests", "sum": "requests"}, {"name": "tokens", "sum": "tokens"},
    {"name": "token_share", "share": "tokens"},
    {"name": "usd_per_mtok", "ratio": ["cost_usd", "tokens"], "k": 1e6},
    {"name": "usage_usd_per_mtok", "ratio": ["usage_cost_usd", "tokens"], "k": 1e6},
    {"name": "j_per_token", "ratio": ["energy_kwh", "tokens"], "k": 3.6e6},
    {"name": "cost_usd", "sum": "cost_usd"},
]
COLUMNS = [
    {"key": "chip", "label": "Chip", "swatch": True}, {"key": "model", "label": "Model"},
    {"key": "task", "label": "Task"}, {"key": "tier", "label": "Tier"},
    {"key": "requests", "label": "Requests", "fmt": "big"}, {"key": "tokens", "label": "Tokens", "fmt": "big"},
    {"key": "token_share", "label": "Token share", "fmt": "pct1"},
    {"key": "usd_per_mtok", "label": "USD/Mtok (allocation)", "fmt": "usd3"},
    {"key": "usage_usd_per_mtok", "label": "USD/Mtok (usage)", "fmt": "usd3"},
    {"key": "j_per_token", "label": "J/token", "fmt": "num3"},
    {"key": "cost_usd", "label": "Cost (allocation)", "fmt": "usd"},
]


def workload_data(wh):
    return wh.df(f"""select strftime(date, '%Y-%m-%d') as date, chip, model, coalesce(task, '–') as task,
                            coalesce(tier, '–') as tier, count(*) as requests, sum(total_tokens) as tokens,
                            sum(energy_kwh) as energy_kwh, sum(cost_usd) as cost_usd,
                            sum(usage_cost_usd) as usage_cost_usd
                     from {REQ} group by all order by all""")


def section(ctx: Ctx) -> Section:
    wh, pal = ctx.wh, ctx.pal
    sec = Section("Cost per million tokens by workload",
                  "Every chip, model, task and tier for the selection in the bar above. Click a column heading "
                  "to sort (again to reverse); the CSV link downloads the rows shown.")
    note = no_data(wh, REQ)
    if note:
        sec.blocks.append(note)
        return sec
    data = columns(workload_data(wh))
    sec.blocks.append(Live("cost-workload-table", {
        "kind": "table", "data": data, "dims": ["date"], "sums": SUMS, "measures": MEASURES,
        "group": ["chip", "model", "task", "tier"], "columns": COLUMNS, "sortable": True, "scroll": True,
        "sort": {"col": "usd_per_mtok", "desc": True}, "csv": "cost-per-mtok-by-workload.csv",
        "colors": {c: pal.chip_hex(c) for c in pal.chips},
        "caption": "USD/Mtok = US dollars per million tokens (prompt + completion); allocation basis charges idle "
                   "capacity to the requests, usage basis only what they used."}))
    return sec
