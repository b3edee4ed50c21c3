"""Align any Parquet table to the spool schema of its kind, value by value where it must.

Files with exactly the spool schema pass through untouched. Any other file (extra, missing or
mistyped columns) is aligned: a value that cannot be converted refuses its row with reason
``wrong type``; an extra column is ignored (noted); a missing optional column becomes null; a
missing required column is reported so the loader rejects the file. A device list stored by an
old writer as one comma-separated string is read as a list (new files store a list).
"""
from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from collectors.schema import KINDS
from warehouse.ingest.rules import REQUIRED

_TS_MIN = dt.datetime(1900, 1, 1, tzinfo=dt.timezone.utc)
_TS_MAX = dt.datetime(2200, 1, 1, tzinfo=dt.timezone.utc)
_TS_MIN_US = int(_TS_MIN.timestamp()) * 1_000_000
_TS_MAX_US = int(_TS_MAX.timestamp()) * 1_000_000


def _to_float(v):
    if isinstance(v, bool) or isinstance(v, (bytes, bytearray)):
        return None, False
    if isinstance(v, str):
        return float(v.strip()), True
    if isinstance(v, (int, float)) or hasattr(v, "__float__"):
        return float(v), True
    return None, False


def _to_int(v, bits: int):
    if isinstance(v, bool):
        return None, False
    if isinstance(v, float):
        if not math.isfinite(v) or v != int(v):
            return None, False
        v = int(v)
    elif isinstance(v, str):
        s = v.strip()
        try:
            v = int(s)
        except ValueError:
            f = float(s)
            if not math.isfinite(f) or f != int(f):
                return None, False
            v = int(f)
    elif not isinstance(v, int):
        return None, False
    if not -(1 << (bits - 1)) <= v < (1 << (bits - 1)):
        return None, False
    return v, True


def _to_str(v):
    if isinstance(v, str):
        return v, True
    if isinstance(v, (bytes, bytearray)):
        return bytes(v).decode("utf-8"), True
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return str(v), True
    return None, False


def _to_ts(v):
    if isinstance(v, str):
        v = dt.datetime.fromisoformat(v.strip().replace("Z", "+00:00"))
    if isinstance(v, dt.datetime):
        if v.tzinfo is None:
            v = v.replace(tzinfo=dt.timezone.utc)
        return (v, True) if _TS_MIN <= v < _TS_MAX else (None, False)
    if isinstance(v, dt.date):
        return dt.datetime(v.year, v.month, v.day, tzinfo=dt.timezone.utc), True
    return None, False


def _to_str_list(v):
    if isinstance(v, str):  # an old writer's comma-separated list
        return [d for d in v.split(",") if d], True
    if isinstance(v, (list, tuple)):
        out = []
        for d in v:
            s, ok = _to_str(d) if d is not None else (None, True)
            if not ok:
                return None, False
            out.append(s)
        return out, True
    return None, False


def _convert(v, typ: pa.DataType):
    """One value to ``typ``: (value, ok). None is fine; anything that does not fit is not."""
    if v is None:
        return None, True
    try:
        if pa.types.is_floating(typ):
            return _to_float(v)
        if pa.types.is_integer(typ):
            return _to_int(v, typ.bit_width)
        if pa.types.is_string(typ):
            return _to_str(v)
        if pa.types.is_timestamp(typ):
            return _to_ts(v)
        if pa.types.is_list(typ) and pa.types.is_string(typ.value_type):
            return _to_str_list(v)
    except (ValueError, TypeError, OverflowError, UnicodeDecodeError):
        return None, False
    return None, False


def _short(v) -> str:
    s = repr(v)
    return s if len(s) <= 80 else s[:77] + "..."


def _fast_cast(col, typ: pa.DataType):
    """``col`` cast to ``typ`` when that is exact (timestamps: in range), else None."""
    try:
        if pa.types.is_timestamp(typ) and not pa.types.is_timestamp(col.type):
            return None  # numbers and strings are not instants: convert value by value
        # timestamp units may lose sub-microsecond digits; everything else must cast exactly
        cast = col.cast(typ, safe=not pa.types.is_timestamp(typ))
        if pa.types.is_timestamp(typ):
            mm = pc.min_max(cast.cast(pa.int64()))
            lo, hi = mm["min"].as_py(), mm["max"].as_py()
            if lo is not None and (lo < _TS_MIN_US or hi >= _TS_MAX_US):
                return None  # instants out of range: go value by value
        return cast
    except Exception:
        return None


def _slow_convert(col, f: pa.Field, pre: list) -> pa.Array:
    """Convert a column value by value, noting refused rows in ``pre``."""
    n = len(col)
    try:
        values = col.to_pylist()
    except Exception:
        values = [None] * n
        for i in range(n):
            pre[i] = pre[i] or f"{f.name}|wrong type|{col.type}"
    out = []
    for i, v in enumerate(values):
        cv, ok = _convert(v, f.type)
        if not ok:
            pre[i] = pre[i] or f"{f.name}|wrong type|{_short(v)}"
        out.append(cv)
    return pa.array(out, type=f.type)


def conform(table: pa.Table, kind: str) -> tuple[pa.Table, list[str], list[str]]:
    """Align any table to the spool schema of ``kind``.

    Returns (table with the schema's columns plus ``_row`` and ``_pre``, missing required
    columns, notes). ``_pre`` holds 'field|reason|value' for rows refused while converting.
    """
    schema = KINDS[kind]
    n = table.num_rows
    names = table.column_names
    missing = sorted(REQUIRED[kind] - set(names))
    notes = []
    extra = sorted(set(names) - set(schema.names))
    if extra:
        notes.append(f"extra columns ignored: {extra}")
    if len(set(names)) != len(names):
        notes.append("repeated column names: the first of each is used")
    pre: list[str | None] = [None] * n
    cols = []
    for f in schema:
        if f.name not in names:
            cols.append(pa.nulls(n, f.type))
            continue
        col = table.column(names.index(f.name))
        if col.type == f.type or (pa.types.is_dictionary(col.type) and col.type.value_type == f.type):
            cast = col  # a dictionary-encoded column (the loader reads text columns so) stays encoded
        else:
            cast = _fast_cast(col, f.type)
        if cast is None:
            notes.append(f"{f.name}: {col.type} converted value by value")
            cast = _slow_convert(col, f, pre)
        cols.append(cast)
    # the columns as read (no copy: a ChunkedArray keeps the file's row groups as its chunks)
    out = pa.Table.from_arrays(cols, schema=pa.schema([pa.field(f.name, c.type) for f, c in zip(schema, cols)]))
    out = out.append_column("_row", pa.array(np.arange(n, dtype=np.int64)))
    out = out.append_column("_pre", pa.array(pre, pa.string()) if any(pre) else pa.nulls(n, pa.string()))
    return out, missing, notes
