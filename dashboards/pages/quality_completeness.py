"""The server-counter completeness table on quality.html: per replica, the prompt and generation tokens the
inference server counted itself (scraped vllm:* / sglang:* counters) against the replica's request
telemetry, the gaps, and the replica-hours beyond the tolerance, from marts.fct_server_token_completeness."""
from __future__ import annotations

from dashboards.pages._core import Ctx, Html, Note, Section, fmt_num, html_table, no_data

MART = "marts.fct_server_token_completeness"
MAX_ROWS = 60
#: what a replica-hour's row is flagged by
BEYOND = "not (prompt_within_tolerance and generation_within_tolerance)"


def section(ctx: Ctx) -> Section:
    wh = ctx.wh
    sec = Section("Server counters against request telemetry, per replica",
                  "Per replica over the whole period: the prompt and generation tokens the inference server "
                  "counted itself (vllm:prompt_tokens_total / generation_tokens_total or sglang:*, scraped) and the "
                  "tokens of the replica's requests in the request telemetry, compared per UTC hour; an hour is "
                  "beyond tolerance when a gap is above the tolerance (percent of the server's count, dbt vars in "
                  "dbt_project.yml). Server counters that map to no replica show as replica \"(none)\".")
    note = no_data(wh, MART)
    if note:
        sec.blocks.append(note)
        return sec
    df = wh.df(f"""select coalesce(replica_id, '(none)') as replica, string_agg(distinct node, ', ') as node,
                          sum(server_prompt_tokens) as sp, sum(telemetry_prompt_tokens) as tp,
                          sum(server_generation_tokens) as sg, sum(telemetry_completion_tokens) as tg,
                          count(*) filter (where {BEYOND}) as beyond, count(*) as hours,
                          max(prompt_tolerance_pct) as ptol, max(generation_tolerance_pct) as gtol
                   from {MART} group by all order by beyond desc, replica limit {MAX_ROWS}""")
    flagged = int(df.beyond.sum())
    sec.blocks.append(Note(
        f"{flagged} replica-hour(s) beyond tolerance (prompt {fmt_num(df.ptol.max(), 1)} %, generation "
        f"{fmt_num(df.gtol.max(), 1)} % of the server's count)." if flagged else
        "Every replica-hour's tokens match the server counters within the tolerance.",
        "info"))
    pct = lambda gap, base: fmt_num(100.0 * gap / base, 1, " %") if base else "–"  # noqa: E731
    rows = [[r.replica, r.node, fmt_num(r.sp), fmt_num(r.tp), pct(r.sp - r.tp, r.sp), fmt_num(r.sg), fmt_num(r.tg),
             pct(r.sg - r.tg, r.sg), f"{int(r.beyond)} / {int(r.hours)}"] for r in df.itertuples()]
    sec.blocks.append(Html(html_table(
        ["Replica", "Node", "Prompt tokens (server)", "Prompt tokens (telemetry)", "Prompt gap",
         "Generation tokens (server)", "Generation tokens (telemetry)", "Generation gap", "Hours beyond tolerance"],
        rows, caption=f"Replicas, most hours beyond tolerance first (at most {MAX_ROWS}; every replica-hour in {MART}).",
        num_cols=set(range(2, 9)))))
    return sec
