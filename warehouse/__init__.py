"""tokenwatt warehouse: DuckDB DDL, spool loader, energy attribution and evaluation (no Dagster)."""
