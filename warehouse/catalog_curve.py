"""The catalog's power-vs-batch curve into the warehouse: ``ref.catalog_power_curve``.

For every (model, chip) serving row of the fleet (collectors/catalog/models.yaml, with the fleet
file's own ``perf:`` and ``chips:`` overrides, validated by collectors/sim/fleet.py), the active
power per device (W above the chip's serving idle: idle_power_w + model_loaded_idle_extra_w) while
prefilling and while decoding at the edges of each batch-size bin the attribution learns
(warehouse/attribution/segments.py), up to the row's max_batch. The Energy page draws it beside
the learned curve (marts.fct_power_model); marts.fct_power_curve_catalog keeps the pairs the fleet
serves. The curve is the catalog's own (``Perf.decode_power_w``), not a second copy of it.
"""
from __future__ import annotations

import json
from pathlib import Path

import duckdb

from collectors.sim.fleet import load_fleet
from collectors.sim.fleet_types import Fleet
from warehouse.attribution.segments import BIN_LO, BIN_NAMES, batch_bin

#: the fleet whose serving rows stand for the catalog when the home was not simulated (real
#: telemetry): a preset with no perf or chip overrides of its own
CATALOG_FLEET = "default"


def curve_batches(max_batch: int) -> list[int]:
    """The batch sizes the curve is drawn at: each bin's first and last batch, up to ``max_batch``."""
    edges = {int(lo) for lo in BIN_LO} | {int(lo) - 1 for lo in BIN_LO[1:]} | {int(max_batch)}
    return sorted(b for b in edges if 1 <= b <= max_batch)


def curve_rows(fleet: Fleet) -> list[tuple]:
    """(chip, model, feature, phase, batch, active_power_w, active_power_per_request_w, idle_power_w,
    rated_power_w, max_batch, source) for every serving row of ``fleet`` whose chip it knows."""
    rows = []
    for (model, chip_id), perf in sorted(fleet.perf.items()):
        chip = fleet.chips.get(chip_id)
        if chip is None:
            continue
        idle, rated = chip.serving_idle_w, chip.rated_power_w
        common = (idle, rated, perf.max_batch, fleet.source)
        rows.append((chip_id, model, "prefill", "prefill", None, max(perf.prefill_power_w - idle, 0.0), None,
                     *common))
        for b in curve_batches(perf.max_batch):
            p = max(perf.decode_power_w(b, rated) - idle, 0.0)
            rows.append((chip_id, model, f"decode_{BIN_NAMES[int(batch_bin(b))]}", "decode", b, p, p / b, *common))
    return rows


def home_fleet(fleet_meta: Path) -> Fleet:
    """The fleet a simulated home was made from (``fleet_source`` in its sim.json), else the catalog's."""
    if fleet_meta.exists():
        meta = json.loads(fleet_meta.read_text())
        src = meta.get("fleet_source")
        if not isinstance(src, str) or not src:
            raise ValueError(f"{fleet_meta}: field 'fleet_source' is missing or not a string")
        return load_fleet(src)
    return load_fleet(CATALOG_FLEET)


def write_catalog_curve(con: duckdb.DuckDBPyConnection, fleet: Fleet) -> int:
    """Replace ``ref.catalog_power_curve`` from ``fleet``'s serving rows (one transaction); returns rows."""
    rows = curve_rows(fleet)
    con.execute("create schema if not exists ref")
    con.execute("begin")
    try:
        con.execute("""create or replace table ref.catalog_power_curve (chip varchar, model varchar,
            feature varchar, phase varchar, batch integer, active_power_w double, active_power_per_request_w double,
            idle_power_w double, rated_power_w double, max_batch integer, source varchar)""")
        con.executemany("insert into ref.catalog_power_curve values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise
    return len(rows)
