"""The live quarantine table on quality.html, and the node -> chip rule it shares with the matching table.

raw.quarantine holds kind, file, row, field, reason and value, no chip and no date. The date is the
spooled file's hive partition (``kind/date=YYYY-MM-DD/node=NAME/part.parquet``), the node its node
partition; a node's chip is the one chip its devices report (marts.fct_device_energy_daily). A row
whose node has no devices, or devices of several chips, has no chip: it stays in the table under any
chip filter, its chip cell saying so (site.js keeps rows with a null key named in ``keep_null``).
"""
from __future__ import annotations

from dashboards.pages._core import Ctx, Live, columns

Q = "raw.quarantine"
DEV = "marts.fct_device_energy_daily"
#: what a chip cell says where a row's node has no single chip
NO_CHIP = "none (shown under every chip)"


def node_chip_cte(ctx: Ctx) -> str:
    """``node_chip(node, chip)``: each node's chip where all its devices are of one chip, else null."""
    if ctx.wh.exists(DEV):
        return f"""node_chip as (select node, case when count(distinct chip) = 1 then min(chip) end as chip
                                 from {DEV} where node is not null group by node)"""
    return "node_chip as (select null::varchar as node, null::varchar as chip where false)"


def partition_sql(col: str = "file") -> tuple[str, str]:
    """SQL for the date and the node of a spooled file's path (its hive partitions), null when absent."""
    date = f"try_cast(nullif(regexp_extract({col}, '(^|/)date=([0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}})(/|$)', 2), '') as date)"
    node = f"nullif(regexp_extract({col}, '(^|/)node=(.*)/[^/]*$', 2), '')"
    return date, node


Q_MEASURES = [{"name": "rows", "sum": "rows"}, {"name": "files", "max": "files"}]
Q_COLUMNS = [{"key": "kind", "label": "Record kind"}, {"key": "reason", "label": "Reason", "wrap": True},
             {"key": "field", "label": "Field"},
             {"key": "chip", "label": "Chip (of the file's node)", "swatch": True, "null_text": NO_CHIP},
             {"key": "rows", "label": "Rows", "fmt": "num0"},
             {"key": "files", "label": "Files (most in a day)", "fmt": "num0"},
             {"key": "example_value", "label": "Example value (any date)"},
             {"key": "example_file", "label": "Example file (any date)"}]


def quarantine_table(ctx: Ctx) -> Live:
    """Quarantined rows per (kind, reason, field, chip) for the selected dates and chip."""
    wh, pal = ctx.wh, ctx.pal
    day, node = partition_sql("q.file")
    df = wh.df(f"""
        with {node_chip_cte(ctx)},
        q as (select coalesce(q.kind, 'file') as kind, coalesce(q.reason, 'unknown') as reason,
                     coalesce(q.field, '–') as field, {day} as day, {node} as node, q.file, q.value
              from {Q} q),
        qc as (select q.*, nc.chip from q left join node_chip nc on nc.node = q.node),
        ex as (select kind, reason, field, chip, any_value(value order by file, value) as example_value,
                      min(file) as example_file from qc group by all)
        select strftime(qc.day, '%Y-%m-%d') as date, kind, reason, field, chip, count(*) as rows,
               count(distinct file) as files, any_value(ex.example_value) as example_value,
               any_value(ex.example_file) as example_file
        from qc join ex using (kind, reason, field, chip) group by all order by all""")
    df["example_value"] = df.example_value.map(lambda v: clip(v, 24))
    df["example_file"] = df.example_file.map(lambda v: _short(v, 40))
    return Live("quality-quarantine-table", {
        "kind": "table", "data": columns(df), "dims": ["date"], "sums": ["rows"], "measures": Q_MEASURES,
        "group": ["kind", "reason", "field", "chip", "example_value", "example_file"], "columns": Q_COLUMNS,
        "keep_null": ["chip", "date"], "colors": {c: pal.chip_hex(c) for c in pal.chips},
        "sort": {"col": "rows", "desc": True}, "scroll": len(df) > 20, "csv": "quarantine.csv",
        "caption": "raw.quarantine for the selected dates (the date in the file's path) and chip (the chip of "
                   "the file's node; a node with no devices or several chips matches every chip). The full "
                   "list, with row numbers, is in the warehouse."})


def clip(v, n: int) -> str:
    s = "–" if v is None or v != v else str(v)
    return s if len(s) <= n else s[:n - 1] + "…"


def _short(v, n: int) -> str:
    if v is None or v != v:
        return "–"
    s = str(v)
    return s if len(s) <= n else "…" + s[-(n - 1):]
