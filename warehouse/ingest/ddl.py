"""The raw schema (sql/raw.sql) and the connection every loader and reader opens."""
from __future__ import annotations

from pathlib import Path

import duckdb

SQL_DIR = Path(__file__).parent / "sql"


#: storage format a new warehouse is written in: DuckDB 1.5's (storage version 68), which the newest
#: stock duckdb CLI on PyPI (duckdb-cli 1.5.6, reads 64-68) opens; DuckDB 2.0's own default (69) it
#: refuses. An existing file keeps the format it was created with.
STORAGE_COMPATIBILITY = "v1.5.0"


def connect(db_path: Path | str, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """A connection to the warehouse (UTC); a writable one makes sure the raw schema exists."""
    fresh = not read_only and str(db_path) != ":memory:" and not Path(db_path).exists()
    config = {"storage_compatibility_version": STORAGE_COMPATIBILITY} if fresh else {}
    con = duckdb.connect(str(db_path), read_only=read_only, config=config)
    try:
        con.execute("set TimeZone = 'UTC'")
    except duckdb.Error:
        pass
    if not read_only:
        ensure_schema(con)
    return con


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create the raw tables; bring a warehouse of an earlier layout up to this one."""
    con.execute((SQL_DIR / "raw.sql").read_text())
    con.execute("alter table raw.manifest add column if not exists fingerprint varchar")
    con.execute("alter table raw.server_counters add column if not exists replica_id varchar")
    typ = con.execute("""select data_type from information_schema.columns
                         where table_schema = 'raw' and table_name = 'replicas' and column_name = 'device_ids'
                      """).fetchone()
    if typ and typ[0] == "VARCHAR":  # device lists were comma-separated strings: now lists
        con.execute("""alter table raw.replicas alter device_ids set data type varchar[]
                       using list_filter(string_split(device_ids, ','), lambda d: d <> '')""")
