"""One function renders the shared rule table's SQL (written in DuckDB's dialect) for an engine.

The rule table (:data:`warehouse.ingest.rules.RULES`) is the only place a rule is written; DuckDB
runs its text as is, Spark runs :func:`render`'s translation (sqlglot, plus the two functions
sqlglot leaves DuckDB-shaped: ``isinf``, ``len`` of a list and ``epoch_us``).
"""
from __future__ import annotations

from functools import lru_cache

import sqlglot
from sqlglot import exp


def _spark_fix(node: exp.Expression) -> exp.Expression:
    if isinstance(node, exp.IsInf):  # Spark has no isinf: |x| = +inf
        return exp.EQ(this=exp.Abs(this=node.this), expression=exp.cast(exp.Literal.string("Infinity"), "double"))
    if isinstance(node, exp.Length) and isinstance(node.this, exp.ArrayFilter):  # length of a list
        return exp.ArraySize(this=node.this)
    if isinstance(node, exp.Anonymous) and str(node.this).lower() == "epoch_us":  # DuckDB's epoch_us
        return exp.UnixMicros(this=node.expressions[0])
    return node


@lru_cache(maxsize=None)
def render(sql: str, dialect: str) -> str:
    """``sql`` (DuckDB's dialect) as ``dialect`` runs it: 'duckdb' (unchanged) or 'spark'."""
    if dialect == "duckdb":
        return sql
    if dialect != "spark":
        raise ValueError(f"unknown SQL dialect {dialect!r} (duckdb or spark)")
    tree = sqlglot.parse_one(sql, read="duckdb").transform(_spark_fix)
    return tree.sql(dialect="spark")
