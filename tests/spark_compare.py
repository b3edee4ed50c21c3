"""Compare a table the DuckDB path wrote with the one the Spark path wrote: the same rows, keys
(every non-float column) exact, doubles within 1e-9 relative."""
from __future__ import annotations

import math
from pathlib import Path

import duckdb

REL = 1e-9


def spark_table(path: Path, columns: list[str]) -> list[tuple]:
    """A Spark-written Parquet table (hive partitions read back as columns), ``columns`` in order."""
    files = [str(p) for p in sorted(Path(path).rglob("*.parquet"))]
    if not files:
        return []
    con = duckdb.connect()
    con.execute("set TimeZone = 'UTC'")
    cols = ", ".join(f'"{c}"' for c in columns)
    return con.execute(f"select {cols} from read_parquet(?, hive_partitioning=true, union_by_name=true)",
                       [files]).fetchall()


def _sort_key(row):
    return tuple((0, "") if v is None else (1, v if not isinstance(v, float) else 0.0) for v in row)


def assert_same_rows(duck: list[tuple], spark: list[tuple], columns: list[str], what: str) -> None:
    assert len(duck) == len(spark), f"{what}: {len(duck)} rows on DuckDB, {len(spark)} on Spark"
    a, b = sorted(duck, key=_sort_key), sorted(spark, key=_sort_key)
    for ra, rb in zip(a, b):
        for c, x, y in zip(columns, ra, rb):
            if isinstance(x, float) or isinstance(y, float):
                if x is None or y is None or math.isnan(x) or math.isnan(y):
                    assert (x is None and y is None) or (x is not None and y is not None
                                                         and math.isnan(x) and math.isnan(y)), (what, c, ra, rb)
                else:
                    assert math.isclose(x, y, rel_tol=REL, abs_tol=1e-12), (what, c, ra, rb)
            else:
                assert x == y, (what, c, ra, rb)
