"""The FOCUS export carries the footprint as x_ columns: Wh, gCO2e and mL on the full and the
accelerator-only boundary, per charge row, adding up to marts.fct_request_footprint."""
from __future__ import annotations

import duckdb
import pyarrow.parquet as pq
import pytest

from warehouse.footprint.focus_columns import FOOTPRINT_COLUMNS
from warehouse.money.focus import COLUMNS, export_focus
from warehouse.money.focus_check import check_focus

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def exported(tiny_home, tmp_path_factory):
    out = tmp_path_factory.mktemp("focus_fp") / "fleet-focus"
    export_focus(tiny_home / "warehouse.duckdb", out)
    return tiny_home, out.with_suffix(".parquet"), out.with_suffix(".csv")


def test_footprint_columns_add_up_to_the_mart_per_chip_and_model(exported):
    home, pq_path, csv_path = exported
    names = [c for c, _ in COLUMNS]
    assert all(c in names for c, _ in FOOTPRINT_COLUMNS)
    rows = pq.read_table(pq_path).to_pylist()
    got: dict = {}
    for r in rows:
        assert r["x_FullEnergyWh"] is not None and r["x_FullEnergyWh"] >= r["x_AcceleratorEnergyWh"] > 0
        parts = r["x_AcceleratorEnergyWh"] + r["x_HostEnergyWh"] + r["x_ReserveEnergyWh"] + r["x_FacilityEnergyWh"]
        assert parts == pytest.approx(r["x_FullEnergyWh"], rel=1e-9)
        # the accelerator boundary is the row's own attributed energy (x_EnergyKwh)
        assert r["x_AcceleratorEnergyWh"] == pytest.approx(r["x_EnergyKwh"] * 1000, rel=1e-9)
        g = got.setdefault((r["x_Chip"], r["x_Model"]), [0.0] * 4)
        for i, c in enumerate(("x_FullEnergyWh", "x_FullCarbonMarketGco2e", "x_FullCarbonLocationGco2e",
                               "x_FullWaterMl")):
            g[i] += r[c]
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    want = {(c, m): v for c, m, *v in con.execute("""
        select chip, model, sum(full_wh), sum(full_market_gco2e), sum(full_location_gco2e), sum(full_water_ml)
        from marts.fct_request_footprint group by all""").fetchall()}
    con.close()
    assert set(got) == set(want) and len(want) >= 3
    for k, v in want.items():
        assert got[k] == pytest.approx(v, rel=1e-9), k
    assert check_focus(csv_path, home)["failures"] == []  # the cost arithmetic is untouched


def test_without_footprint_marts_the_columns_are_null(exported, tmp_path):
    import shutil

    home, _, _ = exported
    db = tmp_path / "warehouse.duckdb"
    shutil.copy(home / "warehouse.duckdb", db)
    con = duckdb.connect(str(db))
    con.execute("drop table marts.fct_request_footprint")
    con.close()
    export_focus(db, tmp_path / "f.parquet")
    rows = pq.read_table(tmp_path / "f.parquet").to_pylist()
    assert rows and all(r[c] is None for r in rows for c, _ in FOOTPRINT_COLUMNS)
