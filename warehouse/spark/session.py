"""A Spark session for tokenwatt: UTC, Arrow transfers, a configurable master (default local[2])."""
from __future__ import annotations

import os
from pathlib import Path

DEFAULT_MASTER = "local[2]"


class SparkMissing(RuntimeError):
    """PySpark or Java is not installed: the Spark engine cannot start."""


def require_pyspark():
    """The ``pyspark`` module, or :class:`SparkMissing` saying what to install. This package
    (warehouse/spark/) is the only place that imports PySpark."""
    import shutil

    try:
        import pyspark
    except ImportError as exc:
        raise SparkMissing("the Spark engine needs PySpark: pip install 'tokenwatt[spark]' "
                           "(pyspark 4.0, with Java 17: apt-get install default-jre-headless)") from exc
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        raise SparkMissing("the Spark engine needs Java 17 or later: apt-get install default-jre-headless")
    return pyspark


def spark_session(master: str | None = None, app: str = "tokenwatt", conf: dict | None = None):
    """A session on ``master`` (``TOKENWATT_SPARK_MASTER``, else local[2]); an existing one on the
    same master is reused. Timestamps are UTC; partitions overwritten dynamically (a reloaded file
    replaces only its own partition)."""
    require_pyspark()
    from pyspark.sql import SparkSession

    master = master or os.environ.get("TOKENWATT_SPARK_MASTER", DEFAULT_MASTER)
    active = SparkSession.getActiveSession()
    if active is not None and active.sparkContext.master == master:
        return active
    if active is not None:
        active.stop()
    cores = _cores(master)
    b = (SparkSession.builder.master(master).appName(app)
         .config("spark.sql.session.timeZone", "UTC")
         .config("spark.driver.extraJavaOptions", "-Duser.timezone=UTC")
         .config("spark.executor.extraJavaOptions", "-Duser.timezone=UTC")
         .config("spark.sql.execution.arrow.pyspark.enabled", "true")
         .config("spark.sql.sources.partitionOverwriteMode", "dynamic")
         .config("spark.sql.shuffle.partitions", str(max(2, 2 * cores)))
         .config("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
         .config("spark.sql.warehouse.dir", os.environ.get("TOKENWATT_SPARK_WAREHOUSE", _scratch()))
         .config("spark.ui.enabled", "false")
         .config("spark.ui.showConsoleProgress", "false")
         .config("spark.sql.ansi.enabled", "false"))
    for k, v in (conf or {}).items():
        b = b.config(k, v)
    os.environ.setdefault("PYSPARK_PYTHON", _python())
    s = b.getOrCreate()
    s.sparkContext.setLogLevel("ERROR")
    return s


def _cores(master: str) -> int:
    if master.startswith("local[") and master[6:-1].isdigit():
        return int(master[6:-1])
    return os.cpu_count() or 2


def _scratch() -> str:
    """Spark's own catalog directory (never the working directory): a per-user temp folder."""
    import tempfile

    d = Path(tempfile.gettempdir()) / f"tokenwatt-spark-{os.getuid()}"
    d.mkdir(parents=True, exist_ok=True)
    return str(d / "warehouse")


def _python() -> str:
    import sys

    return sys.executable


def hadoop_path(path) -> str:
    """A path for Spark's readers, which expand glob characters: each one escaped (names are data).
    Writers take the path as it is (:func:`write_path`): escaping there would name another file."""
    s = str(Path(path).absolute())
    return "".join("\\" + c if c in "\\{}[]*?" else c for c in s)


def write_path(path) -> str:
    """A path for Spark's writers, which never expand globs: the absolute path as it is."""
    return str(Path(path).absolute())
