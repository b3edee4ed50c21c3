"""Validate staged rows in Spark SQL with the shared rule table, in the DuckDB loader's order of
precedence: a conversion problem (``_pre``), the first failed rule (rendered by
:func:`warehouse.spark.dialect.render`), an identifier :func:`collectors.names.name_problem`
refuses, an unknown replica, a duplicate key (within the staged rows, first by (file, row) wins;
then a key already loaded).
"""
from __future__ import annotations

from collectors.names import name_problem
from warehouse.ingest.rules import KEYS, LIST_FIELDS, NAME_FIELDS, rules_for
from warehouse.spark.dialect import render


def _lit(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def rules_case(kind: str) -> str:
    """The fixed rules of ``kind`` as one Spark SQL CASE giving 'field|reason|value' or null."""
    whens = " ".join(f"when {r.predicate} then {_lit(r.field + '|' + r.reason + '|')} || "
                     f"coalesce(cast({r.field} as varchar), 'null')" for r in rules_for(kind))
    return render(f"case {whens} else null end", "spark")


def _name_columns(rows, kind: str) -> list:
    """Per identifier field with a refused value: a column giving 'field|invalid name: ...|value'.
    The distinct values are few; they travel as literal map entries, never as SQL text."""
    from pyspark.sql import functions as F

    out = []
    for fld in sorted(NAME_FIELDS[kind]):
        vals = rows.select(F.explode(fld).alias("v") if fld in LIST_FIELDS else F.col(fld).alias("v")).distinct()
        bad = {v: p for (v,) in vals.where("v is not null").collect() if (p := name_problem(v))}
        if not bad:
            continue
        m = F.create_map(*[F.lit(x) for k, p in sorted(bad.items()) for x in (k, f"invalid name: {p}")])
        if fld in LIST_FIELDS:
            hit = F.filter(F.col(fld), lambda d: m[d].isNotNull())[0]
        else:
            hit = F.when(m[F.col(fld)].isNotNull(), F.col(fld))
        out.append(F.when(hit.isNotNull(), F.concat(F.lit(fld + "|"), m[hit], F.lit("|"), hit)))
    return out


def checked(rows, kind: str, known_replicas=None):
    """``rows`` with ``_chk``: the row's refusal before duplicate detection, or null."""
    from pyspark.sql import functions as F

    parts = [F.col("_pre"), F.expr(rules_case(kind)), *_name_columns(rows, kind)]
    if kind == "requests" and known_replicas is not None:
        known = known_replicas.select(F.col("replica_id").alias("_known")).distinct()
        rows = rows.join(F.broadcast(known), rows.replica_id == known._known, "left")
        parts.append(F.when(F.col("_known").isNull() & F.col("replica_id").isNotNull(),
                            F.concat(F.lit("replica_id|unknown replica|"), F.col("replica_id"))))
    return rows.withColumn("_chk", F.coalesce(*parts))


def _key_text(keys):
    from pyspark.sql import functions as F

    return F.concat_ws(" ", *[F.coalesce(F.col(k).cast("string"), F.lit("null")) for k in keys])


def refused(chk, kind: str, existing=None):
    """(_file, _row, _reason) of every refused staged row: rules, duplicates, keys already loaded."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    keys = KEYS[kind][0]
    bad = chk.where("_chk is not null").select("_file", "_row", F.col("_chk").alias("_reason"))
    ok = chk.where("_chk is null").where(" and ".join(f"{k} is not null" for k in keys))
    w = Window.partitionBy(*keys).orderBy("_file", "_row")
    d = ok.select(*keys, "_file", "_row", F.row_number().over(w).alias("_nth"),
                  F.first("_file").over(w).alias("_first"))
    dups = d.where("_nth > 1").select("_file", "_row", F.concat(
        F.when(F.col("_first") == F.col("_file"), F.lit("key|duplicate within file|"))
        .otherwise(F.lit("key|duplicate of a row in another file|")), _key_text(keys)).alias("_reason"))
    out = bad.unionByName(dups)
    if existing is not None:
        firsts = d.where("_nth = 1").join(existing.select(*keys).distinct(), keys, "left_semi")
        out = out.unionByName(firsts.select("_file", "_row", F.concat(
            F.lit("key|duplicate of a row already loaded|"), _key_text(keys)).alias("_reason")))
    return out
