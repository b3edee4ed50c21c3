"""The footprint's ``x_`` columns of the FOCUS export (warehouse/money/focus.py).

Each charge row there is one UTC day x replica x model x task x language x tier x meter (input or
output tokens). Its footprint is the sum over its requests (marts.fct_request_footprint) of the
full-boundary and accelerator-only energy, carbon and water, split between the two meters by the
request's ``input_share`` (the same split as the row's ``x_EnergyKwh``, marts.fct_request_energy).
Summed over the export, the columns equal the sums of marts.fct_request_footprint.
"""
from __future__ import annotations

import duckdb

#: (FOCUS column, fct_request_footprint column, multiplier to the column's unit)
_MEASURES = [
    ("x_FullEnergyWh", "full_j", 1 / 3600), ("x_AcceleratorEnergyWh", "accelerator_j", 1 / 3600),
    ("x_HostEnergyWh", "host_j", 1 / 3600), ("x_ReserveEnergyWh", "reserve_j", 1 / 3600),
    ("x_FacilityEnergyWh", "facility_j", 1 / 3600),
    ("x_FullCarbonLocationGco2e", "full_location_gco2e", 1.0), ("x_FullCarbonMarketGco2e", "full_market_gco2e", 1.0),
    ("x_AcceleratorCarbonLocationGco2e", "accelerator_location_gco2e", 1.0),
    ("x_AcceleratorCarbonMarketGco2e", "accelerator_market_gco2e", 1.0),
    ("x_FullWaterMl", "full_water_ml", 1.0), ("x_AcceleratorWaterMl", "accelerator_water_ml", 1.0),
]
#: the columns as focus.py declares its own (name, kind): all decimals
FOOTPRINT_COLUMNS: list[tuple[str, str]] = [(name, "d") for name, _, _ in _MEASURES]
_KEY = ("date", "replica_id", "model", "task", "language", "tier")


def footprint_groups(con: duckdb.DuckDBPyConnection) -> dict[tuple, dict[str, tuple[float, float]]]:
    """(date, replica_id, model, task, language, tier) -> FOCUS column -> (input, output) amounts;
    empty when the warehouse has no footprint mart (the columns are then null)."""
    has = con.execute("""select count(*) from information_schema.tables
                         where table_schema = 'marts' and table_name = 'fct_request_footprint'""").fetchone()[0]
    if not has:
        return {}
    sums = ", ".join(f"sum(f.{col} * e.input_share), sum(f.{col} - f.{col} * e.input_share)" for _, col, _ in _MEASURES)
    keys = ", ".join(f"e.{k}" for k in _KEY)
    out: dict[tuple, dict[str, tuple[float, float]]] = {}
    for rec in con.execute(f"""select {keys}, {sums} from marts.fct_request_energy as e
                               inner join marts.fct_request_footprint as f using (request_id)
                               group by all""").fetchall():
        vals = rec[len(_KEY):]
        out[tuple(rec[:len(_KEY)])] = {name: (float(vals[2 * i] or 0.0) * k, float(vals[2 * i + 1] or 0.0) * k)
                                       for i, (name, _, k) in enumerate(_MEASURES)}
    return out


def footprint_columns(groups: dict, r: dict, side: str) -> dict[str, float | None]:
    """The ``x_`` footprint columns of the charge row of group ``r`` (a row of focus.py's query) and
    meter ``side`` ('input' or 'output'); null when the group has no footprint."""
    g = groups.get(tuple(r[k] for k in _KEY))
    i = 0 if side == "input" else 1
    return {name: (g[name][i] if g else None) for name, _ in FOOTPRINT_COLUMNS}
