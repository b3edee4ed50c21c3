"""The break-even table on cost.html, drawn in the browser for the selected chip, model and dates.

marts.fct_break_even_price is one row per model and chip over the whole history; its figures are
ratios of sums (dbt/models/marts/fct_break_even_price.sql), so the same per-day sums from
marts.fct_token_economics, with the served tokens priced at the list (ref.api_prices), give them for
any date range: break-even input = input cost / input tokens, output likewise, list x = cost / the
tokens' revenue at list prices.
"""
from __future__ import annotations

from dashboards.pages._core import Ctx, Live, columns

TE = "marts.fct_token_economics"
PRICES = "ref.api_prices"

BE_MEASURES = [
    {"name": "break_even_usd_per_mtok_input", "ratio": ["input_cost_usd", "input_tokens"], "k": 1e6},
    {"name": "break_even_usd_per_mtok_output", "ratio": ["output_cost_usd", "output_tokens"], "k": 1e6},
    {"name": "list_usd_per_mtok_input", "max": "list_usd_per_mtok_input"},
    {"name": "list_usd_per_mtok_output", "max": "list_usd_per_mtok_output"},
    {"name": "break_even_list_scale", "ratio": ["cost_usd", "list_revenue_usd"]}]
BE_COLUMNS = [{"key": "model", "label": "Model"}, {"key": "chip", "label": "Chip", "swatch": True},
              {"key": "break_even_usd_per_mtok_input", "label": "Break-even input USD/Mtok", "fmt": "usd3"},
              {"key": "break_even_usd_per_mtok_output", "label": "Break-even output USD/Mtok", "fmt": "usd3"},
              {"key": "list_usd_per_mtok_input", "label": "List input", "fmt": "usd"},
              {"key": "list_usd_per_mtok_output", "label": "List output", "fmt": "usd"},
              {"key": "break_even_list_scale", "label": "List x to break even", "fmt": "times2"}]


def break_even_table(ctx: Ctx) -> Live:
    """Break-even API prices per model and chip for the selection (allocation basis)."""
    wh, pal = ctx.wh, ctx.pal
    if wh.exists(PRICES):
        prices = f"left join {PRICES} ap on ap.model = t.model"
        lists = ("max(ap.usd_per_mtok_input)", "max(ap.usd_per_mtok_output)")
        rev = ("sum(t.input_tokens * ap.usd_per_mtok_input + t.output_tokens * ap.usd_per_mtok_output) / 1e6")
    else:
        prices, lists, rev = "", ("null::double", "null::double"), "null::double"
    df = wh.df(f"""
        select strftime(t.date, '%Y-%m-%d') as date, t.model, t.chip, sum(t.input_tokens) as input_tokens,
               sum(t.output_tokens) as output_tokens, sum(t.cost_usd) as cost_usd,
               sum(t.input_cost_usd) as input_cost_usd, sum(t.output_cost_usd) as output_cost_usd,
               {lists[0]} as list_usd_per_mtok_input, {lists[1]} as list_usd_per_mtok_output,
               {rev} as list_revenue_usd
        from {TE} t {prices} where t.chip is not null group by all order by all""")
    return Live("cost-break-even-table", {
        "kind": "table", "data": columns(df), "dims": ["date"],
        "sums": ["input_tokens", "output_tokens", "cost_usd", "input_cost_usd", "output_cost_usd", "list_revenue_usd"],
        "measures": BE_MEASURES, "group": ["model", "chip"], "columns": BE_COLUMNS,
        "colors": {c: pal.chip_hex(c) for c in pal.chips}, "order": {"chip": pal.chips},
        "sort": {"col": "model", "desc": False}, "csv": "break_even.csv",
        "caption": "Allocation basis, for the selected dates, chip and model. List x: the factor the current API "
                   "list prices would need for the tokens served to pay for themselves (below 1: the list covers "
                   "the cost)."})
