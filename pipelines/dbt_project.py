"""Where a tokenwatt home keeps things (no Dagster import here)."""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from collectors.home import Home

ROOT = Path(__file__).resolve().parents[1]
DBT_DIR = ROOT / "dbt"


def default_home() -> Path:
    return Path(os.environ.get("TOKENWATT_HOME", "data")).resolve()


def dbt_executable() -> str:
    """The dbt next to this interpreter (the venv's), else the one on PATH."""
    cand = Path(sys.executable).parent / "dbt"
    if cand.exists():
        return str(cand)
    found = shutil.which("dbt")
    if not found:
        raise RuntimeError("dbt executable not found: install tokenwatt into a virtualenv (make demo) first")
    return found


def ensure_dbt_manifest() -> Path:
    """Parse the dbt project when its manifest is missing or older than a model file."""
    import subprocess

    manifest = DBT_DIR / "target" / "manifest.json"
    newest = max(p.stat().st_mtime for p in DBT_DIR.rglob("*")
                 if p.suffix in (".sql", ".yml") and "target" not in p.parts)
    if manifest.exists() and manifest.stat().st_mtime >= newest:
        return manifest
    env = dict(os.environ)
    env.setdefault("TOKENWATT_DB", str(Home(default_home()).db))
    subprocess.run([dbt_executable(), "parse", "--profiles-dir", str(DBT_DIR), "--quiet"], cwd=DBT_DIR,
                   check=True, env=env)
    return manifest
