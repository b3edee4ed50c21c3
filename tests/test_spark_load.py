"""The Spark loader against the DuckDB loader on the chaos fleet: the same quarantine row for row
(kind, file, row, field, reason, value), the same good rows per file, and a rerun loads nothing."""
from __future__ import annotations

import shutil

import duckdb
import pytest

pytest.importorskip("pyspark")
if shutil.which("java") is None:
    pytest.fail("the Spark tests need Java (.ci/run installs default-jre-headless)")

from collectors.sim.simulate import simulate  # noqa: E402
from warehouse.ingest.load import connect, load_spool  # noqa: E402
from warehouse.spark.load import load_spool_spark, read_manifest  # noqa: E402
from warehouse.spark.session import spark_session  # noqa: E402

Q = "select kind, file, row, field, reason, value from {} order by all"


@pytest.mark.slow
def test_chaos_quarantine_identical_on_both_engines(tmp_path):
    home = tmp_path / "h[1]*"  # glob characters in the path: read as data, never expanded
    simulate("chaos", home, "2026-10-01", 1, 15.0, 42)
    con = connect(tmp_path / "w.duckdb")
    load_spool(con, home / "spool")
    spark = spark_session("local[2]")
    rep = load_spool_spark(spark, home / "spool", home / "spark")
    lake = duckdb.connect()
    for name in ("quarantine", "good"):
        glob = str(home / "spark" / ("quarantine" if name == "quarantine" else "raw"))
        lake.execute("create table " + name + " as select * from read_parquet(?, hive_partitioning=false, "
                     "union_by_name=true)", [[str(p) for p in sorted((home / "spark").rglob("*.parquet"))
                                              if str(p).startswith(glob)]])
    duck_q = con.execute(Q.format("raw.quarantine")).fetchall()
    spark_q = lake.execute(Q.format("quarantine")).fetchall()
    assert len(duck_q) > 10 and {r[4] for r in duck_q} >= {"negative power", "negative token count"}
    assert spark_q == duck_q
    duck_files = con.execute("""select _file, count(*) from (select _file from raw.device_samples union all
        select _file from raw.requests union all select _file from raw.replicas union all
        select _file from raw.host_samples) group by 1 order by 1""").fetchall()
    assert lake.execute("select _file, count(*) from good group by 1 order by 1").fetchall() == duck_files
    assert sum(rep["rows_loaded"].values()) == sum(n for _, n in duck_files)
    man = read_manifest(home / "spark")
    duck_man = dict(con.execute("select file, status from raw.manifest").fetchall())
    assert dict(zip(man.file, man.status)) == duck_man
    again = load_spool_spark(spark, home / "spool", home / "spark")  # exactly once: nothing new
    assert again["files_loaded"] == 0 and again["rows_loaded"] == {}
    assert lake.execute("select count(*) from quarantine").fetchone()[0] == len(duck_q)
