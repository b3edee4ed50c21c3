"""The live tables on quality.html: counter resets per chip and clock-skew estimates per node and day,
drawn in the browser (assets/site.js) for the selected chip and dates from per-day rows aggregated in
DuckDB (marts.fct_device_energy_daily, attribution.clock_skew)."""
from __future__ import annotations

from dashboards.pages._core import Ctx, Live, columns

DEV = "marts.fct_device_energy_daily"
SKEW = "attribution.clock_skew"

RESET_MEASURES = [{"name": "devices", "max": "devices"}, {"name": "resets", "sum": "resets"},
                  {"name": "counter_iv", "sum": "counter_iv"}, {"name": "integrated_iv", "sum": "integrated_iv"},
                  {"name": "integrated_pct", "ratio": ["integrated_iv", "all_iv"], "k": 100}]
RESET_COLUMNS = [{"key": "chip", "label": "Chip", "swatch": True},
                 {"key": "devices", "label": "Devices (most in a day)", "fmt": "num0"},
                 {"key": "resets", "label": "Counter resets", "fmt": "num0"},
                 {"key": "counter_iv", "label": "Intervals from counter", "fmt": "num0"},
                 {"key": "integrated_iv", "label": "Intervals integrated from power", "fmt": "num0"},
                 {"key": "integrated_pct", "label": "Integrated (%)", "fmt": "num3"}]


def resets_table(ctx: Ctx) -> Live:
    """Counter resets and how each interval's energy was found, per chip, for the selection."""
    wh, pal = ctx.wh, ctx.pal
    daily = wh.df(f"""select strftime(date, '%Y-%m-%d') as date, chip, count(distinct device_id) as devices,
                             sum(counter_resets) as resets, sum(counter_intervals) as counter_iv,
                             sum(integrated_intervals) as integrated_iv,
                             sum(counter_intervals) + sum(integrated_intervals) as all_iv
                      from {DEV} group by all order by all""")
    return Live("quality-counter-resets-table", {
        "kind": "table", "data": columns(daily), "dims": ["date"],
        "sums": ["resets", "counter_iv", "integrated_iv", "all_iv"], "measures": RESET_MEASURES,
        "group": ["chip"], "columns": RESET_COLUMNS, "colors": {c: pal.chip_hex(c) for c in pal.chips},
        "order": {"chip": pal.chips}, "sort": {"col": "chip", "desc": False},
        "caption": "Per chip for the selected dates. Energy per interval comes from the counter difference where "
                   "the counter is sound, else from integrating power."})


SKEW_MEASURES = [{"name": "skew_s", "max": "skew_s"}, {"name": "correlation", "max": "correlation"},
                 {"name": "correlation_at_zero", "max": "correlation_at_zero"}, {"name": "devices", "max": "devices"}]
SKEW_COLUMNS = [{"key": "date", "label": "Date"}, {"key": "node", "label": "Node"},
                {"key": "skew_s", "label": "Estimated skew (s)", "fmt": "num1"},
                {"key": "correlation", "label": "Correlation at the skew", "fmt": "num3"},
                {"key": "correlation_at_zero", "label": "Correlation at 0 s", "fmt": "num3"},
                {"key": "devices", "label": "Devices", "fmt": "num0"}, {"key": "corrected", "label": "Corrected"}]


def skew_table(ctx: Ctx) -> Live:
    """One row per node and day (attribution.clock_skew) in the selected dates; nodes carry no chip."""
    df = ctx.wh.df(f"""select strftime(date, '%Y-%m-%d') as date, node, skew_s, correlation, correlation_at_zero,
                              devices, case when applied then 'yes' else 'no' end as corrected
                       from {SKEW} order by date, node""")
    return Live("quality-clock-skew", {
        "kind": "table", "data": columns(df), "dims": ["date"], "sums": [], "measures": SKEW_MEASURES,
        "group": ["date", "node", "corrected"], "columns": SKEW_COLUMNS, "sort": {"col": "date", "desc": False},
        "scroll": len(df) > 20,
        "caption": "Skew estimates per node and day in the selected dates (attribution.clock_skew)."})
