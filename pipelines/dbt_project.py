"""The dbt project and each home's dbt profile and target (no Dagster import here).

dbt learns the warehouse from a profile written into the home (``HOME/dbt/profiles.yml``, the
absolute path of ``HOME/warehouse.duckdb``) and keeps its manifest, partial-parse state and logs
in ``HOME/dbt/target``: nothing travels through ``os.environ``, and because a home's profile never
changes, dbt's partial parsing carries over from one call to the next. ``dbt/profiles.yml`` (which
reads ``TOKENWATT_DB``) stays for running dbt by hand.

    python -m pipelines.dbt_project docs --home DIR   # dbt docs generate against DIR (make docs)
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from collectors.home import Home

ROOT = Path(__file__).resolve().parents[1]
DBT_DIR = ROOT / "dbt"
PROFILE, TARGET = "tokenwatt", "local"


def default_home() -> Path:
    """The home of `make dev` / `dagster dev`: TOKENWATT_HOME, read here once, else ./data."""
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


def _home(home: Home | str | Path) -> Home:
    return home if isinstance(home, Home) else Home(home)


def profile_text(home: Home | str | Path) -> str:
    """The home's profiles.yml: the same text for the same home, every time (partial parsing keys on it)."""
    db = str(_home(home).db)
    if any(tok in db for tok in ("{{", "{%", "{#")):  # dbt renders profile values as Jinja
        raise ValueError(f"home path {db!r}: contains Jinja delimiters, which dbt would render; use another folder")
    return (f"{PROFILE}:\n  target: {TARGET}\n  outputs:\n    {TARGET}:\n      type: duckdb\n"
            f"      path: {json.dumps(db)}\n      threads: 2\n")


def profiles_dir(home: Home | str | Path) -> Path:
    """Write the home's dbt profile (only when its text differs) and return its folder, HOME/dbt."""
    home = _home(home)
    home.dbt.mkdir(parents=True, exist_ok=True)
    f = home.dbt / "profiles.yml"
    text = profile_text(home)
    if not f.exists() or f.read_text() != text:
        f.write_text(text)
    return home.dbt


def target_path(home: Home | str | Path) -> Path:
    """Where dbt keeps this home's manifest, partial-parse state, run results and logs."""
    return _home(home).dbt / "target"


def dbt_command(home: Home | str | Path, *args: str) -> list[str]:
    """The dbt command line for ``args`` against ``home`` (run it with cwd=DBT_DIR)."""
    target = str(target_path(home))
    return [dbt_executable(), *args, "--profiles-dir", str(profiles_dir(home)), "--target-path", target,
            "--log-path", target]


def run_dbt(home: Home | str | Path, *args: str, check: bool = True, **kw) -> subprocess.CompletedProcess:
    """Run dbt ``args`` against ``home`` in the project folder."""
    return subprocess.run(dbt_command(home, *args), cwd=DBT_DIR, check=check, **kw)


def ensure_dbt_manifest(home: Home | str | Path) -> Path:
    """The home's manifest: parsed again only when it is missing or older than a project file."""
    manifest = target_path(home) / "manifest.json"
    newest = max(p.stat().st_mtime for p in DBT_DIR.rglob("*")
                 if p.suffix in (".sql", ".yml") and not {"target", "logs"} & set(p.relative_to(DBT_DIR).parts))
    if manifest.exists() and manifest.stat().st_mtime >= newest:
        return manifest
    run_dbt(home, "parse", "--quiet")
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipelines.dbt_project", description="dbt against a home")
    parser.add_argument("what", choices=["docs", "parse"], help="docs: dbt docs generate; parse: dbt parse")
    parser.add_argument("--home", default="data", help="tokenwatt home directory (default ./data)")
    args = parser.parse_args(argv)
    home = Home(args.home)
    if args.what == "docs":
        if not home.db.exists():
            print(f"error: no warehouse at {home.db}: run `tokenwatt demo --home {args.home}` first", file=sys.stderr)
            return 2
        run_dbt(home, "docs", "generate")
        print(f"dbt docs: {target_path(home) / 'index.html'} (serve: dbt docs serve --project-dir {DBT_DIR} "
              f"--profiles-dir {home.dbt} --target-path {target_path(home)})")
    else:
        run_dbt(home, "parse")
    return 0


if __name__ == "__main__":
    sys.exit(main())
