"""A chip absent from the catalog or the price file is an ERROR check naming the chip and the file
to add it to (warehouse.ingest.checks.chips_known), and `tokenwatt run` exits non-zero on it."""
from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [p for p in (str(ROOT), str(ROOT / "tests")) if p not in sys.path]

from collectors.exposition import parse_exposition  # noqa: E402
from collectors.schema import DEVICE_SAMPLES  # noqa: E402
from ingest_builders import DAY, put, samples  # noqa: E402
from warehouse.ingest.checks import chips_known  # noqa: E402
from warehouse.ingest.load import connect, load_spool  # noqa: E402

CATALOG = {"nvidia-h100-sxm", "amd-mi300x"}
PRICED = {"nvidia-h100-sxm"}


def _warehouse(tmp_path, chips):
    spool = tmp_path / "spool"
    for i, (node, chip) in enumerate(chips):
        put(spool, "device_samples", f"d{i}", samples(device=f"{node}/{i}", node=node, chip=chip), node=node)
    con = connect(tmp_path / "w.duckdb")
    load_spool(con, spool)
    return con


def test_a_fleet_of_known_priced_chips_passes(tmp_path):
    con = _warehouse(tmp_path, [("n1", "nvidia-h100-sxm"), ("n2", "nvidia-h100-sxm")])
    res = chips_known(con, "2026-10-01", "2026-10-01", CATALOG, PRICED, "chips.yaml", "prices.yaml")
    assert res["passed"] and res["chips"] == 1 and res["unknown"] == [] and res["failures"] == "none"


def test_a_chip_missing_from_catalog_or_prices_fails_and_names_chip_devices_and_file(tmp_path):
    con = _warehouse(tmp_path, [("n1", "nvidia-h100-sxm"), ("a100-1", "nvidia-a100-sxm4-80gb"),
                                ("a100-2", "nvidia-a100-sxm4-80gb"), ("m1", "amd-mi300x")])
    res = chips_known(con, "2026-10-01", "2026-10-01", CATALOG, PRICED, "cat/chips.yaml", "money/prices.yaml")
    assert not res["passed"]
    by_chip = {u["chip"]: u for u in res["unknown"]}
    assert by_chip["nvidia-a100-sxm4-80gb"] == {"chip": "nvidia-a100-sxm4-80gb", "devices": 2,
                                                "nodes": ["a100-1", "a100-2"], "missing": ["catalog", "prices"]}
    assert by_chip["amd-mi300x"]["missing"] == ["prices"] and "nvidia-h100-sxm" not in by_chip
    assert ("chip 'nvidia-a100-sxm4-80gb' (2 device(s) on a100-1, a100-2) is not in the chip catalog "
            "cat/chips.yaml (section chips:) nor in the price file money/prices.yaml (section chips:)") in res["failures"]
    assert "chip 'amd-mi300x' (1 device(s) on m1) is not in the price file money/prices.yaml" in res["failures"]
    # outside the window the chip is not looked at; an unreadable price file checks the catalog only
    assert chips_known(con, "2026-10-02", "2026-10-03", CATALOG, PRICED, "c", "p")["passed"]
    only_catalog = chips_known(con, "2026-10-01", "2026-10-01", CATALOG, None, "c", "p")
    assert [u["chip"] for u in only_catalog["unknown"]] == ["nvidia-a100-sxm4-80gb"]


def _exporter_rows(t: dt.datetime) -> list[dict]:
    text = ""
    for gpu, (model, host) in enumerate([("NVIDIA H100 80GB HBM3", "h100-1"), ("NVIDIA A100-SXM4-80GB", "a100-1")]):
        labels = f'gpu="0",UUID="GPU-{gpu}",modelName="{model}",Hostname="{host}.example.internal"'
        s = (t - DAY).total_seconds()
        text += (f"DCGM_FI_DEV_POWER_USAGE{{{labels}}} 300\n"
                 f"DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION{{{labels}}} {1e9 + 300_000 * s:.0f}\n")
    return parse_exposition(text, t, "scraper", "http://exporter/metrics").device_rows


@pytest.mark.slow
def test_tokenwatt_run_fails_on_an_unknown_chip_and_says_where_to_add_it(tmp_path):
    home = tmp_path / "home"
    rows = [r for i in range(120) for r in _exporter_rows(DAY + dt.timedelta(seconds=10 + 10 * i))]
    assert {r["chip"] for r in rows} == {"nvidia-h100-sxm", "nvidia-a100-sxm4-80gb"}
    for node in ("h100-1", "a100-1"):
        table = pa.Table.from_pylist([r for r in rows if r["node"] == node], schema=DEVICE_SAMPLES)
        put(home / "spool", "device_samples", "exporter", table, node=node)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TOKENWATT_FRESHNESS_REFERENCE": "data"}
    r = subprocess.run([sys.executable, "-m", "pipelines.cli", "run", "--home", str(home)], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=1200)
    assert r.returncode != 0, r.stderr[-4000:]
    line = [x for x in r.stderr.splitlines() if "CHECK FAILED" in x and "chips_in_catalog_and_prices" in x]
    assert line, r.stderr[-4000:]
    assert "chip 'nvidia-a100-sxm4-80gb' (1 device(s) on a100-1)" in line[0]
    assert "chips.yaml (section chips:)" in line[0] and "prices.yaml (section chips:)" in line[0]
    assert "nvidia-h100-sxm" not in line[0]
