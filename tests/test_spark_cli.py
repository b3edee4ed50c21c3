"""`tokenwatt run --engine spark --home H` on a simulated tiny home: load and attribution on Spark,
tables under HOME/spark, a second run loads nothing new; the DuckDB engine stays the default."""
from __future__ import annotations

import json
import shutil

import pytest

pytest.importorskip("pyspark")
if shutil.which("java") is None:
    pytest.fail("the Spark tests need Java (.ci/run installs default-jre-headless)")

from collectors.sim.simulate import simulate  # noqa: E402
from pipelines.cli import main  # noqa: E402


@pytest.mark.slow
def test_run_engine_spark_on_a_tiny_home(tmp_path, capsys):
    home = tmp_path / "home"
    simulate("tiny", home, "2026-10-01", 1, 60.0, 3, progress=False)
    assert main(["run", "--engine", "spark", "--home", str(home)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["load"]["files_loaded"] > 0 and sum(out["load"]["rows_loaded"].values()) > 0
    assert out["attribution"]["request_energy"] > 0 and out["attribution"]["device_day"] > 0
    assert (home / "spark" / "manifest" / "manifest.parquet").exists()
    assert any((home / "spark" / "attribution" / "device_day").rglob("*.parquet"))
    assert not (home / "warehouse.duckdb").exists()  # the Spark engine never touches the DuckDB file
    assert main(["run", "--engine", "spark", "--home", str(home)]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["load"]["files_loaded"] == 0 and again["attribution"] == out["attribution"]
