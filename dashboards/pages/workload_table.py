"""The $/Mtok table on cost.html: chip x model x task x tier, both cost bases, blended and split into
input (prompt) and output (completion) tokens, sortable, with a CSV of the selection. Sums per day come
from the request mart (aggregated in DuckDB); the browser adds them up for the selected chip, model and
dates (assets/site.js).

The input/output split is the mart's (``input_cost_usd`` + ``output_cost_usd`` = ``cost_usd``, set by
the money models from attribution's prefill/decode energy): input USD/Mtok is input cost per million
prompt tokens, output USD/Mtok output cost per million completion tokens. A warehouse built before the
split existed has no such columns: the table then shows the blended figures only, and says so."""
from __future__ import annotations

from dashboards.pages._core import Ctx, Live, Note, Section, columns, no_data

REQ = "marts.fct_request_energy"
SPLIT = ["input_cost_usd", "output_cost_usd", "input_usage_cost_usd", "output_usage_cost_usd"]
SUMS = ["requests", "tokens", "energy_kwh", "cost_usd", "usage_cost_usd"]
SPLIT_SUMS = ["prompt_tokens", "completion_tokens", *SPLIT]
MEASURES = [
    {"name": "requests", "sum": "requests"}, {"name": "tokens", "sum": "tokens"},
    {"name": "token_share", "share": "tokens"},
    {"name": "usd_per_mtok", "ratio": ["cost_usd", "tokens"], "k": 1e6},
    {"name": "usage_usd_per_mtok", "ratio": ["usage_cost_usd", "tokens"], "k": 1e6},
    {"name": "j_per_token", "ratio": ["energy_kwh", "tokens"], "k": 3.6e6},
    {"name": "cost_usd", "sum": "cost_usd"},
]
SPLIT_MEASURES = [
    {"name": "input_usd_per_mtok", "ratio": ["input_cost_usd", "prompt_tokens"], "k": 1e6},
    {"name": "output_usd_per_mtok", "ratio": ["output_cost_usd", "completion_tokens"], "k": 1e6},
    {"name": "input_usage_usd_per_mtok", "ratio": ["input_usage_cost_usd", "prompt_tokens"], "k": 1e6},
    {"name": "output_usage_usd_per_mtok", "ratio": ["output_usage_cost_usd", "completion_tokens"], "k": 1e6},
]
KEYS = [{"key": "chip", "label": "Chip", "swatch": True}, {"key": "model", "label": "Model"},
        {"key": "task", "label": "Task"}, {"key": "tier", "label": "Tier"},
        {"key": "requests", "label": "Requests", "fmt": "big"}, {"key": "tokens", "label": "Tokens", "fmt": "big"},
        {"key": "token_share", "label": "Token share", "fmt": "pct1"}]
BLENDED = [{"key": "usd_per_mtok", "label": "USD/Mtok (allocation)", "fmt": "usd3"},
           {"key": "usage_usd_per_mtok", "label": "USD/Mtok (usage)", "fmt": "usd3"}]
SPLIT_COLUMNS = [
    {"key": "input_usd_per_mtok", "label": "Input USD/Mtok (allocation)", "fmt": "usd3"},
    {"key": "output_usd_per_mtok", "label": "Output USD/Mtok (allocation)", "fmt": "usd3"},
    {"key": "input_usage_usd_per_mtok", "label": "Input USD/Mtok (usage)", "fmt": "usd3"},
    {"key": "output_usage_usd_per_mtok", "label": "Output USD/Mtok (usage)", "fmt": "usd3"},
]
TAIL = [{"key": "j_per_token", "label": "J/token", "fmt": "num3"},
        {"key": "cost_usd", "label": "Cost (allocation)", "fmt": "usd"}]


def has_split(wh) -> bool:
    return set(SPLIT) <= wh.columns(REQ)


def workload_data(wh, split: bool | None = None):
    split = has_split(wh) if split is None else split
    extra = ("sum(prompt_tokens) as prompt_tokens, sum(completion_tokens) as completion_tokens, "
             + ", ".join(f"sum({c}) as {c}" for c in SPLIT) + ",") if split else ""
    return wh.df(f"""select strftime(date, '%Y-%m-%d') as date, chip, model, coalesce(task, '–') as task,
                            coalesce(tier, '–') as tier, count(*) as requests, sum(total_tokens) as tokens,
                            {extra}
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
    split = has_split(wh)
    data = columns(workload_data(wh, split))
    caption = ("USD/Mtok = US dollars per million tokens (prompt + completion); allocation basis charges idle "
               "capacity to the requests, usage basis only what they used.")
    if split:
        caption += (" Input USD/Mtok is the prompt tokens' part of the cost per million prompt tokens, output "
                    "USD/Mtok the completion tokens' part per million completion tokens (the money models' split).")
    sec.blocks.append(Live("cost-workload-table", {
        "kind": "table", "data": data, "dims": ["date"], "sums": SUMS + (SPLIT_SUMS if split else []),
        "measures": MEASURES + (SPLIT_MEASURES if split else []),
        "group": ["chip", "model", "task", "tier"],
        "columns": KEYS + BLENDED + (SPLIT_COLUMNS if split else []) + TAIL, "sortable": True, "scroll": True, "dense": split,
        "sort": {"col": "usd_per_mtok", "desc": True}, "csv": "cost-per-mtok-by-workload.csv",
        "colors": {c: pal.chip_hex(c) for c in pal.chips}, "caption": caption}))
    if not split:
        sec.blocks.append(Note(f"No input/output split in {REQ} (columns {', '.join(SPLIT)}): rebuild the "
                               "warehouse with `tokenwatt run` to get input and output USD/Mtok.", "info"))
    return sec
