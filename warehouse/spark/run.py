"""``tokenwatt run --engine spark``: the stages that run on Spark, in order, on one home.

Load (spool -> HOME/spark/raw, quarantine, manifest) and attribution (-> HOME/spark/attribution)
run on Spark. The dbt models and marts do not run on Spark yet (issue 17): :func:`run_spark` says
so in its result instead of pretending, and the DuckDB engine remains the one that builds marts.
"""
from __future__ import annotations

import time
from pathlib import Path

from collectors.home import Home

NOT_ON_SPARK = ("dbt models and marts", "site")


def lake_of(home: Home) -> Path:
    """Where the Spark engine keeps its tables: HOME/spark/ (Parquet)."""
    return home.root / "spark"


def run_spark(home_dir: str | Path, master: str | None = None) -> dict:
    """Load the home's spool and attribute every day with data on Spark (``master``: local[N] or a
    cluster URL, default TOKENWATT_SPARK_MASTER or local[2]); returns counts and seconds per stage."""
    from warehouse.spark.attribute import attribute_spark
    from warehouse.spark.load import load_spool_spark
    from warehouse.spark.session import spark_session

    home = Home(home_dir)
    spark = spark_session(master)
    out: dict = {"master": spark.sparkContext.master, "lake": str(lake_of(home))}
    t0 = time.perf_counter()
    out["load"] = load_spool_spark(spark, home.spool, lake_of(home))
    t1 = time.perf_counter()
    out["attribution"] = attribute_spark(spark, lake_of(home))
    t2 = time.perf_counter()
    out["seconds"] = {"load": round(t1 - t0, 2), "attribution": round(t2 - t1, 2)}
    out["not_on_spark"] = list(NOT_ON_SPARK)
    return out
