"""The attribution schema's tables: columns, DuckDB DDL and Arrow builders."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa

EPOCH = dt.date(1970, 1, 1)

DAY_COLUMNS = ["date", "device_id", "chip", "replica_id", "measured_energy_j", "attributed_active_j",
               "shared_idle_j", "unused_j", "request_side_active_j", "request_side_idle_j",
               "counter_intervals", "integrated_intervals", "gap_s", "covered_s", "counter_resets",
               "idle_w", "idle_source"]
DAY_TYPES = [pa.date32(), pa.string(), pa.string(), pa.string()] + [pa.float64()] * 6 + \
            [pa.int64(), pa.int64(), pa.float64(), pa.float64(), pa.int64(), pa.float64(), pa.string()]
_DAY_SQL = ["date", "varchar", "varchar", "varchar"] + ["double"] * 6 + \
           ["bigint", "bigint", "double", "double", "bigint", "double", "varchar"]

#: columns of attribution.request_energy as the pipeline writes it: one row per request and UTC
#: day it ran on (a request crossing midnight has one row per day; sum them for the request);
#: prefill_energy_j + decode_energy_j = active_energy_j (the active energy of its two phases);
#: prefill_device_s, decode_device_s: its share of its devices' time in each phase (summed over devices)
REQUEST_DAY_SCHEMA = pa.schema([("request_id", pa.string()), ("date", pa.date32()),
                                ("active_energy_j", pa.float64()), ("idle_share_j", pa.float64()),
                                ("energy_j", pa.float64()), ("prefill_energy_j", pa.float64()),
                                ("decode_energy_j", pa.float64()), ("prefill_device_s", pa.float64()),
                                ("decode_device_s", pa.float64())])
_PHASE_COLUMNS = ("prefill_energy_j", "decode_energy_j", "prefill_device_s", "decode_device_s")


def request_day_table(ids: pa.Array, day: int, active, idle, prefill, phase_s) -> pa.Table:
    """One day's request rows; decode = active - prefill, and active is written as prefill + decode
    so the two phases add up to it exactly."""
    decode = active - prefill
    active = prefill + decode
    return pa.Table.from_arrays([ids, pa.array(np.full(len(ids), day, np.int32)).cast(pa.date32()),
                                 pa.array(active), pa.array(idle), pa.array(active + idle), pa.array(prefill),
                                 pa.array(decode), pa.array(phase_s[:, 0]), pa.array(phase_s[:, 1])],
                                schema=REQUEST_DAY_SCHEMA)

SKEW_COLUMNS = ["date", "node", "skew_s", "correlation", "correlation_at_zero", "devices", "applied"]
SKEW_TYPES = [pa.date32(), pa.string(), pa.float64(), pa.float64(), pa.float64(), pa.int64(), pa.bool_()]
SKEW_DDL = """create table if not exists attribution.clock_skew (date date, node varchar, skew_s double,
              correlation double, correlation_at_zero double, devices bigint, applied boolean)"""

from warehouse.attribution.segments import BIN_NAMES  # noqa: E402

#: attribution.power_model: the power model learned per device and UTC day (W of active power per
#: device-second of each feature), or the step-share weights used instead and why
POWER_COLUMNS = (["date", "device_id", "chip", "model", "replica_id", "method", "prefill_w"]
                 + [f"decode_{b}_w" for b in BIN_NAMES]
                 + ["prefill_decode_ratio", "r2", "intervals_used", "max_batch", "fallback_reason"])
POWER_TYPES = ([pa.date32(), pa.string(), pa.string(), pa.string(), pa.string(), pa.string()]
               + [pa.float64()] * (1 + len(BIN_NAMES)) + [pa.float64(), pa.float64(), pa.int64(), pa.int64(),
                                                         pa.string()])
_POWER_SQL = (["date", "varchar", "varchar", "varchar", "varchar", "varchar"] + ["double"] * (1 + len(BIN_NAMES))
              + ["double", "double", "bigint", "bigint", "varchar"])

#: tables written per UTC day (a window's rows are replaced as a whole)
DAILY_TABLES = ("request_energy", "device_day", "clock_skew", "power_model")


def date_of(day: int) -> dt.date:
    return EPOCH + dt.timedelta(days=int(day))


def day_number(d: dt.date) -> int:
    return (d - EPOCH).days


def _table(rows: list, names: list, types: list) -> pa.Table:
    cols = list(zip(*rows)) if rows else [[] for _ in names]
    return pa.table({n: pa.array(list(c), t) for n, c, t in zip(names, cols, types)})


def day_table(day_rows: list) -> pa.Table:
    return _table(day_rows, DAY_COLUMNS, DAY_TYPES)


def skew_table(rows: list) -> pa.Table:
    return _table(rows, SKEW_COLUMNS, SKEW_TYPES)


def power_table(rows: list) -> pa.Table:
    return _table(rows, POWER_COLUMNS, POWER_TYPES)


def create_tables(con) -> None:
    con.execute("create schema if not exists attribution")
    con.execute("""create table if not exists attribution.request_energy (request_id varchar, date date,
                   active_energy_j double, idle_share_j double, energy_j double, prefill_energy_j double,
                   decode_energy_j double, prefill_device_s double, decode_device_s double)""")
    for col in _PHASE_COLUMNS:  # a warehouse written before the phase split
        con.execute(f"alter table attribution.request_energy add column if not exists {col} double")
    cols = ", ".join(f"{n} {t}" for n, t in zip(DAY_COLUMNS, _DAY_SQL))
    con.execute(f"create table if not exists attribution.device_day ({cols})")
    con.execute(SKEW_DDL)
    cols = ", ".join(f"{n} {t}" for n, t in zip(POWER_COLUMNS, _POWER_SQL))
    con.execute(f"create table if not exists attribution.power_model ({cols})")


def insert_arrow(con, table: str, tbl: pa.Table) -> None:
    """Append an Arrow table to ``attribution.<table>`` (a fixed name from this module)."""
    con.register("_rows", tbl)
    try:
        con.execute(f"insert into attribution.{table} select * from _rows")
    finally:
        con.unregister("_rows")
