"""Attribution on Spark: one task per (node, UTC day) group, each running the DuckDB path's own code.

The device samples of a node's day and the requests of that node's replicas overlapping the day
meet in one ``cogroup(...).applyInArrow`` call on an executor. There the group's rows are put in an
in-memory DuckDB with the raw tables' names and :func:`warehouse.attribution.run.run_attribution_days`
attributes that one day, exactly as ``tokenwatt run`` does day by day: the kernel, the clock-skew
estimate, the power model and the table builders exist once. The DuckDB path's day windows are
independent per node (a node's clock skew and its replicas use its own rows only), so the groups
give the same rows as one run over the whole warehouse.

The driver sees only small things: the replica table (a fleet's configuration), the first and last
day with data, and no sample or request row. Output: Parquet tables under HOME/spark/attribution/
(request_energy, device_day, clock_skew, power_model), partitioned by ``date``, a rerun of a day
replacing that day's partition.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from warehouse.attribution import tables as T

SAMPLE_COLUMNS = ["device_id", "chip", "node", "ts", "power_w", "energy_counter_j", "_date"]
REQUEST_COLUMNS = ["request_id", "replica_id", "scheduled_ts", "arrival_ts", "first_token_ts", "finish_ts",
                   "completion_tokens", "_date"]
REPLICA_COLUMNS = ["replica_id", "node", "device_ids", "model", "valid_from"]

#: the attribution tables, as the DuckDB path writes them (warehouse/attribution/tables.py)
TABLES = {
    "request_energy": T.REQUEST_DAY_SCHEMA,
    "device_day": pa.schema(list(zip(T.DAY_COLUMNS, T.DAY_TYPES))),
    "clock_skew": pa.schema(list(zip(T.SKEW_COLUMNS, T.SKEW_TYPES))),
    "power_model": pa.schema(list(zip(T.POWER_COLUMNS, T.POWER_TYPES))),
}


def _union_schema() -> pa.Schema:
    """One row type for the four tables (``_table`` says which; a table's other columns are null)."""
    fields = {"_table": pa.field("_table", pa.string())}
    for schema in TABLES.values():
        for f in schema:
            if f.name in fields and fields[f.name].type != f.type:
                raise TypeError(f"attribution column {f.name} has two types")
            fields.setdefault(f.name, pa.field(f.name, f.type))
    return pa.schema(list(fields.values()))


OUT_SCHEMA = _union_schema()


def _as_py(v):
    return v.as_py() if hasattr(v, "as_py") else v


def attribute_group(replicas: pa.Table):
    """The function each (node, day) group runs: samples and requests of the group in, the four
    tables' rows out (in :data:`OUT_SCHEMA`)."""

    def run(key, samples: pa.Table, requests: pa.Table) -> pa.Table:
        import duckdb

        from warehouse.attribution.run import run_attribution_days

        node, day = (_as_py(k) for k in key)
        con = duckdb.connect()
        try:
            con.execute("set TimeZone = 'UTC'")
            con.execute("create schema raw")
            for name, tbl in (("device_samples", samples), ("requests", requests)):
                con.register("_in", tbl.drop_columns([c for c in ("_node", "_day") if c in tbl.column_names]))
                con.execute(f"create table raw.{name} as select * from _in")
                con.unregister("_in")
            mine = replicas.filter(pc.equal(replicas["_node"], node)).drop_columns(["_node"])
            con.register("_in", mine)
            con.execute("create table raw.replicas as select * from _in")
            con.unregister("_in")
            run_attribution_days(con, day, day)
            parts = []
            for name, schema in TABLES.items():
                t = con.sql(f"select * from attribution.{name}").to_arrow_table().cast(schema)
                cols = {f.name: (t[f.name] if f.name in schema.names else pa.nulls(t.num_rows, f.type))
                        for f in OUT_SCHEMA if f.name != "_table"}
                parts.append(pa.table({"_table": pa.array([name] * t.num_rows, pa.string()), **cols},
                                      schema=OUT_SCHEMA))
            return pa.concat_tables(parts)
        finally:
            con.close()

    return run


def _day_range(samples, requests) -> tuple[dt.date, dt.date] | None:
    """First and last UTC day with samples or requests (the DuckDB path's data_day_range)."""
    from pyspark.sql import functions as F

    a = samples.agg(F.min("_date"), F.max("_date")).first() if samples is not None else (None, None)
    b = (requests.agg(F.min(F.to_date(F.coalesce("scheduled_ts", "arrival_ts"))), F.max("_date")).first()
         if requests is not None else (None, None))
    days = [d for d in (*a, *b) if d is not None]
    return (min(days), max(days)) if days else None


def attribute_spark(spark, lake: Path | str, first: dt.date | None = None, last: dt.date | None = None) -> dict:
    """Attribute the days [first, last] (default: every day with data) from the lake's raw tables
    into HOME/spark/attribution/; returns the rows written per table."""
    from pyspark.sql import functions as F
    from pyspark.sql.pandas.types import from_arrow_schema

    from warehouse.spark.load import read_table
    from warehouse.spark.session import write_path

    lake = Path(lake)
    samples, requests = read_table(spark, lake, "raw/device_samples"), read_table(spark, lake, "raw/requests")
    reps = read_table(spark, lake, "raw/replicas")
    span = _day_range(samples, requests)
    if span is None:
        return {name: 0 for name in TABLES}
    lo, hi = first or span[0], last or span[1]
    if samples is None:
        samples = spark.createDataFrame([], from_arrow_schema(pa.schema([
            ("device_id", pa.string()), ("chip", pa.string()), ("node", pa.string()),
            ("ts", pa.timestamp("us", "UTC")), ("power_w", pa.float64()), ("energy_counter_j", pa.float64()),
            ("_date", pa.date32())])))
    # the replica table is configuration (one row per replica record): it travels to every task;
    # a replica's node is that of its latest record, as in the DuckDB path's read_replicas
    rep_rows = (reps.select(*REPLICA_COLUMNS).toArrow() if reps is not None
                else pa.table({c: pa.array([], t) for c, t in (("replica_id", pa.string()), ("node", pa.string()),
                               ("device_ids", pa.list_(pa.string())), ("model", pa.string()),
                               ("valid_from", pa.timestamp("us", "UTC")))}))
    latest = {}
    for rid, node, vf in zip(*(rep_rows[c].to_pylist() for c in ("replica_id", "node", "valid_from"))):
        if rid not in latest or (vf is not None and (latest[rid][1] is None or vf >= latest[rid][1])):
            latest[rid] = (node, vf)
    rep_node = {rid: nv[0] or "" for rid, nv in latest.items()}
    rep_rows = rep_rows.append_column("_node", pa.array([rep_node[r] for r in rep_rows["replica_id"].to_pylist()],
                                                        pa.string()))
    node_map = F.create_map(*[F.lit(x) for rid, n in sorted(rep_node.items()) for x in (rid, n)]) \
        if rep_node else None
    s = (samples.select(*SAMPLE_COLUMNS).where(F.col("_date").between(F.lit(lo), F.lit(hi)))
         .withColumn("_node", F.col("node")).withColumn("_day", F.col("_date")))
    if requests is None:
        r = spark.createDataFrame([], "request_id string, replica_id string, scheduled_ts timestamp, "
                                      "arrival_ts timestamp, first_token_ts timestamp, finish_ts timestamp, "
                                      "completion_tokens bigint, _date date, _node string, _day date")
    else:
        # every day the request overlaps (read.OVERLAP: starts before the day ends, finishes at
        # most a second before it begins, its _date within a day of it), within [lo, hi]
        start = F.to_date(F.coalesce("scheduled_ts", "arrival_ts"))
        end = F.to_date(F.col("finish_ts") + F.expr("interval 1 second"))
        d0 = F.greatest(start, F.date_sub("_date", 1), F.lit(lo))
        d1 = F.least(end, F.date_add("_date", 1), F.lit(hi))
        node = F.coalesce(node_map[F.col("replica_id")], F.lit("")) if node_map is not None else F.lit("")
        r = (requests.select(*REQUEST_COLUMNS).where(d0 <= d1)
             .withColumn("_node", node).withColumn("_day", F.explode(F.sequence(d0, d1))))
    out = (s.groupBy("_node", "_day").cogroup(r.groupBy("_node", "_day"))
           .applyInArrow(attribute_group(rep_rows), from_arrow_schema(OUT_SCHEMA)))
    from pyspark import StorageLevel

    out = out.persist(StorageLevel.MEMORY_AND_DISK)
    counts = {}
    try:
        for name, schema in TABLES.items():
            t = out.where(F.col("_table") == name).select(*schema.names)
            t.write.mode("overwrite").partitionBy("date").parquet(write_path(lake / "attribution" / name))
        counts = {name: int(n) for name, n in out.groupBy("_table").count().collect()}
    finally:
        out.unpersist()
    return {name: counts.get(name, 0) for name in TABLES}
