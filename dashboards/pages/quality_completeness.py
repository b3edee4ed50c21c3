"""The server-counter completeness table on quality.html: per replica, the prompt and generation tokens the
inference server counted itself (scraped vllm:* / sglang:* counters) against the replica's request
telemetry, the gaps, and the replica-hours beyond the tolerance, from marts.fct_server_token_completeness."""
from __future__ import annotations

from dashboards.pages._core import Ctx, Live, Note, Section, columns, fmt_num, no_data
from dashboards.pages.quality_quarantine import NO_CHIP, node_chip_cte

MART = "marts.fct_server_token_completeness"
#: what a replica-hour's row is flagged by
BEYOND = "not (prompt_within_tolerance and generation_within_tolerance)"


def section(ctx: Ctx) -> Section:
    wh = ctx.wh
    sec = Section("Server counters against request telemetry, per replica",
                  "Per replica: the prompt and generation tokens the inference server "
                  "counted itself (vllm:prompt_tokens_total / generation_tokens_total or sglang:*, scraped) and the "
                  "tokens of the replica's requests in the request telemetry, compared per UTC hour; an hour is "
                  "beyond tolerance when a gap is above the tolerance (percent of the server's count, dbt vars in "
                  "dbt_project.yml). Server counters that map to no replica show as replica \"(none)\".")
    note = no_data(wh, MART)
    if note:
        sec.blocks.append(note)
        return sec
    tol = wh.one(f"""select count(*) filter (where {BEYOND}), max(prompt_tolerance_pct),
                           max(generation_tolerance_pct) from {MART}""")
    flagged = int(tol[0] or 0)
    sec.blocks.append(Note(
        f"Over the whole period, {flagged} replica-hour(s) beyond tolerance (prompt {fmt_num(tol[1], 1)} %, "
        f"generation {fmt_num(tol[2], 1)} % of the server's count)." if flagged else
        "Over the whole period, every replica-hour's tokens match the server counters within the tolerance.",
        "info"))
    sec.blocks.append(completeness_table(ctx))
    return sec


MEASURES = [{"name": "sp", "sum": "sp"}, {"name": "tp", "sum": "tp"},
            {"name": "prompt_gap_pct", "ratio": ["prompt_gap", "sp"], "k": 100},
            {"name": "sg", "sum": "sg"}, {"name": "tg", "sum": "tg"},
            {"name": "generation_gap_pct", "ratio": ["generation_gap", "sg"], "k": 100},
            {"name": "beyond", "sum": "beyond"}, {"name": "hours", "sum": "hours"}]
COLUMNS = [{"key": "replica", "label": "Replica"}, {"key": "node", "label": "Node"},
           {"key": "chip", "label": "Chip (of the node)", "swatch": True, "null_text": NO_CHIP},
           {"key": "sp", "label": "Prompt tokens (server)", "fmt": "num0"},
           {"key": "tp", "label": "Prompt tokens (telemetry)", "fmt": "num0"},
           {"key": "prompt_gap_pct", "label": "Prompt gap (%)", "fmt": "num1"},
           {"key": "sg", "label": "Generation tokens (server)", "fmt": "num0"},
           {"key": "tg", "label": "Generation tokens (telemetry)", "fmt": "num0"},
           {"key": "generation_gap_pct", "label": "Generation gap (%)", "fmt": "num1"},
           {"key": "beyond", "label": "Hours beyond tolerance", "fmt": "num0"},
           {"key": "hours", "label": "Hours compared", "fmt": "num0"}]


def completeness_table(ctx: Ctx) -> Live:
    """Per replica (and node) for the selected dates, chip (the node's) and model: the server's and the
    telemetry's prompt and generation tokens, the gaps and the replica-hours beyond tolerance, from
    per-day sums of marts.fct_server_token_completeness added up in the browser."""
    wh, pal = ctx.wh, ctx.pal
    df = wh.df(f"""with {node_chip_cte(ctx)}
                   select strftime(m.date, '%Y-%m-%d') as date, coalesce(m.replica_id, '(none)') as replica,
                          m.node, nc.chip, m.model,
                          sum(server_prompt_tokens) as sp, sum(telemetry_prompt_tokens) as tp,
                          sum(server_prompt_tokens) - sum(telemetry_prompt_tokens) as prompt_gap,
                          sum(server_generation_tokens) as sg, sum(telemetry_completion_tokens) as tg,
                          sum(server_generation_tokens) - sum(telemetry_completion_tokens) as generation_gap,
                          count(*) filter (where {BEYOND}) as beyond, count(*) as hours
                   from {MART} m left join node_chip nc on nc.node = m.node group by all order by all""")
    sums = ["sp", "tp", "prompt_gap", "sg", "tg", "generation_gap", "beyond", "hours"]
    return Live("quality-server-completeness-table", {
        "kind": "table", "data": columns(df), "dims": ["date"], "sums": sums, "measures": MEASURES,
        "group": ["replica", "node", "chip"], "columns": COLUMNS, "keep_null": ["chip", "model"],
        "colors": {c: pal.chip_hex(c) for c in pal.chips}, "sort": {"col": "beyond", "desc": True},
        "scroll": df.replica.nunique() > 20, "csv": "server-completeness.csv",
        "caption": f"Replicas for the selected dates, chip (of the replica's node; a node with none or several "
                   f"chips matches every chip) and model (a server counter mapped to no replica has no model and "
                   f"matches every model), most hours beyond tolerance first; every replica-hour in {MART}."})
