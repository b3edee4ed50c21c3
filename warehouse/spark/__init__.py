"""The Spark engine: the same spool, rules, attribution kernel and lake layout as the DuckDB path.

* :mod:`session` opens a Spark session (``local[N]`` or a cluster master), UTC, Arrow enabled.
* :mod:`dialect` renders the one rule table (warehouse/ingest/rules.py) into Spark SQL.
* :mod:`load` reads the spool on the executors (the files as listed, never globbed), conforms them
  with the DuckDB loader's own :func:`warehouse.ingest.conform.conform`, validates in Spark SQL and
  writes raw, quarantine and manifest tables as Parquet under HOME/spark/.
* :mod:`attribute` runs the attribution per (node, UTC day) group with ``applyInPandas``: each
  group calls :func:`warehouse.attribution.run.run_attribution_days`, the DuckDB path's code, on that
  group's rows only.

Nothing here imports Dagster; pipelines/ wires it.
"""
