"""Importing the Dagster code location does no work: no spool I/O, no dbt.

A fresh interpreter with an audit hook (PEP 578) records every open/listdir/scandir of a path in
the home's spool and every process it spawns, first while ``import pipelines.definitions`` runs,
then while the lazy ``defs()`` loader runs. The second phase is the control: loading the
definitions does read the spool (the daily partitions) and does run ``dbt parse`` (the home's
manifest does not exist yet), so the hook demonstrably sees both kinds of work.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

PROBE = textwrap.dedent("""
    import json, os, sys
    home = os.path.realpath(sys.argv[1])
    spool = os.path.join(home, "spool")
    seen = {"import": [], "load": []}
    phase = ["import"]

    def _path(p):
        try:
            return os.fsdecode(p) if not isinstance(p, int) else ""
        except TypeError:
            return ""

    def hook(event, args):
        if event in ("open", "os.listdir", "os.scandir") and args:
            p = _path(args[0])
            if p and os.path.realpath(os.path.abspath(p)).startswith(spool):
                seen[phase[0]].append([event, p])
        elif event in ("subprocess.Popen", "os.posix_spawn", "os.exec", "os.system"):
            seen[phase[0]].append([event, repr(args[1] if event == "subprocess.Popen" else args[0])[:300]])

    sys.addaudithook(hook)
    import pipelines.definitions as d
    phase[0] = "load"
    defs = d.defs()
    assert defs.resolve_asset_graph().get_all_asset_keys()
    print("PROBE " + json.dumps(seen))
""")


def test_importing_the_definitions_touches_neither_spool_nor_dbt(tmp_path):
    home = tmp_path / "home"
    (home / "spool" / "device_samples" / "date=2026-10-01").mkdir(parents=True)
    env = dict(os.environ, TOKENWATT_HOME=str(home), PYTHONPATH=str(REPO))
    run = subprocess.run([sys.executable, "-c", PROBE, str(home)], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-4000:]
    seen = json.loads(next(line for line in run.stdout.splitlines() if line.startswith("PROBE "))[6:])
    spool_io = [e for e in seen["import"] if e[0] in ("open", "os.listdir", "os.scandir")]
    # (a library's `file -b python` probe of platform.architecture() may run; dbt must not)
    dbt_runs = [e for e in seen["import"] if e[0] not in ("open", "os.listdir", "os.scandir") and "dbt" in e[1]]
    assert spool_io == [] and dbt_runs == [], f"import did work: {seen['import']}"
    # the control: the lazy loader is where the spool is read and dbt runs
    load = seen["load"]
    assert any(e[0] in ("os.listdir", "os.scandir") for e in load), load
    assert any(e[0] in ("subprocess.Popen", "os.posix_spawn") and "parse" in e[1] for e in load), load
