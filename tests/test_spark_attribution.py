"""Attribution on Spark (one applyInArrow task per node and UTC day, each calling the DuckDB path's
run_attribution_days) against the DuckDB run on the tiny fleet: the four attribution tables equal,
keys exact, doubles within 1e-9 relative; conservation holds on the Spark side too."""
from __future__ import annotations

import shutil

import pytest

pytest.importorskip("pyspark")
if shutil.which("java") is None:
    pytest.fail("the Spark tests need Java (.ci/run installs default-jre-headless)")

from collectors.sim.simulate import simulate  # noqa: E402
from tests.spark_compare import assert_same_rows, spark_table  # noqa: E402
from warehouse.attribution.run import run_attribution_days  # noqa: E402
from warehouse.ingest.load import connect, load_spool  # noqa: E402
from warehouse.spark.attribute import TABLES, attribute_spark  # noqa: E402
from warehouse.spark.load import load_spool_spark  # noqa: E402
from warehouse.spark.session import spark_session  # noqa: E402


@pytest.mark.slow
def test_tiny_attribution_identical_on_both_engines(tmp_path):
    home = tmp_path / "home"
    simulate("tiny", home, "2026-10-01", 2, 10.0, 5, progress=False)  # two days: requests cross midnight
    con = connect(tmp_path / "w.duckdb")
    load_spool(con, home / "spool")
    run_attribution_days(con)
    spark = spark_session("local[2]")
    load_spool_spark(spark, home / "spool", home / "spark")
    counts = attribute_spark(spark, home / "spark")
    for name, schema in TABLES.items():
        cols = schema.names
        duck = con.execute(f"select {', '.join(cols)} from attribution.{name}").fetchall()
        assert counts[name] == len(duck)
        assert_same_rows(duck, spark_table(home / "spark" / "attribution" / name, cols), cols, name)
    assert counts["request_energy"] > 1000 and counts["device_day"] > 0
    midnight = con.execute("select count(*) from (select request_id from attribution.request_energy "
                           "group by 1 having count(*) > 1)").fetchone()[0]
    assert midnight > 0  # some requests ran on two days: each day's share came from its own group
    rows = spark_table(home / "spark" / "attribution" / "device_day",
                       ["measured_energy_j", "attributed_active_j", "shared_idle_j", "unused_j"])
    for m, a, i, u in rows:
        assert abs(a + i + u - m) <= 1e-9 * max(m, 1.0)
