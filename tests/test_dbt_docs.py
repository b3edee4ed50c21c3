"""dbt documentation and unit tests, run on a copy of the tiny home's warehouse.

* `python -m pipelines.dbt_project docs --home DIR` (what `make docs` runs) generates the docs;
* every model and every column the warehouse really has (catalog.json) carries a description in
  the manifest, and so does every source table;
* the dbt ``unit_tests`` of the cost allocation (dbt/models/intermediate/int_requests_costed.yml)
  pass, and there are as many as the yml declares.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipelines.dbt_project import DBT_DIR, run_dbt

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def docs_home(tiny_home, tmp_path_factory) -> Path:
    """A home holding a copy of the tiny warehouse, with `dbt docs generate` run on it as `make docs` does."""
    home = tmp_path_factory.mktemp("docs_home")
    shutil.copy(tiny_home / "warehouse.duckdb", home / "warehouse.duckdb")
    run = subprocess.run([sys.executable, "-m", "pipelines.dbt_project", "docs", "--home", str(home)], cwd=REPO,
                         env=dict(os.environ, PYTHONPATH=str(REPO)), capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return home


def test_dbt_docs_generate_succeeds_on_the_tiny_home(docs_home):
    target = docs_home / "dbt" / "target"
    assert (target / "index.html").stat().st_size > 0
    catalog = json.loads((target / "catalog.json").read_text())
    assert "model.tokenwatt.fct_request_energy" in catalog["nodes"]
    assert not catalog.get("errors")


def test_every_model_column_and_source_has_a_description(docs_home):
    target = docs_home / "dbt" / "target"
    manifest = json.loads((target / "manifest.json").read_text())
    catalog = json.loads((target / "catalog.json").read_text())
    models = {k: v for k, v in manifest["nodes"].items() if v["resource_type"] == "model"}
    assert len(models) >= 16
    missing = [k for k, v in models.items() if not v["description"].strip()]
    for uid, node in models.items():
        real = catalog["nodes"][uid]["columns"]  # the columns the built relation really has
        documented = {c.lower(): v["description"].strip() for c, v in node["columns"].items()}
        missing += [f"{uid}.{c}" for c in real if not documented.get(c.lower())]
        missing += [f"{uid}.{c} (not in the table)" for c in documented if c not in {r.lower() for r in real}]
    sources = manifest["sources"].values()
    missing += [s["unique_id"] for s in sources if not s["description"].strip() or not s["source_description"].strip()]
    assert missing == []


def test_cost_allocation_unit_tests_pass(docs_home):
    declared = yaml.safe_load((DBT_DIR / "models" / "intermediate" / "int_requests_costed.yml").read_text())
    names = [u["name"] for u in declared["unit_tests"]]
    assert len(names) >= 2
    every = [(u["model"], u["name"]) for f in sorted((DBT_DIR / "models").rglob("*.yml"))
             for u in (yaml.safe_load(f.read_text()) or {}).get("unit_tests", [])]
    run = run_dbt(docs_home, "test", "--select", "test_type:unit", check=False, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout[-4000:]
    for model, name in every:
        assert f"{model}::{name}" in run.stdout and "PASS" in run.stdout, run.stdout[-4000:]
    assert f"PASS={len(every)}" in run.stdout.replace(" ", ""), run.stdout[-2000:]
