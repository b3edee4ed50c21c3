"""The warehouse opens in the stock DuckDB CLI from PyPI (duckdb-cli 1.5.6 reads storage 64-68).

CI installs it (.ci/run: ``pip install duckdb-cli==1.5.6`` into its own venv, path in $DUCKDB_CLI).
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CLI = os.environ.get("DUCKDB_CLI") or shutil.which("duckdb")


def readme_queries() -> list[str]:
    block = re.search(r"Query it with DuckDB.*?```sql\n(.*?)```", (ROOT / "README.md").read_text(), re.S).group(1)
    return [q.strip() + ";" for q in block.split(";") if "select" in q]


@pytest.mark.slow
@pytest.mark.skipif(CLI is None, reason="no duckdb CLI: set DUCKDB_CLI (CI installs duckdb-cli==1.5.6)")
def test_the_pipelines_warehouse_opens_in_the_stock_cli_and_answers_the_readme_queries(tiny_home, tmp_path):
    version = subprocess.run([CLI, "--version"], capture_output=True, text=True).stdout
    db = tmp_path / "warehouse.duckdb"
    shutil.copy(tiny_home / "warehouse.duckdb", db)
    queries = [q for q in readme_queries() if "select" in q]
    assert len(queries) == 4
    for q in queries:
        r = subprocess.run([CLI, "-readonly", "-csv", str(db), "-c", q], capture_output=True, text=True, timeout=120)
        assert r.returncode == 0 and "Error" not in r.stderr, (version, q, r.stderr)
        assert len(r.stdout.strip().splitlines()) >= 2, (q, r.stdout)  # a header and at least one row
