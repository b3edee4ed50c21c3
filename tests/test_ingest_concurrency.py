"""The collector agent writes into the spool while the loader runs: no partial read, no lost
file; after a final load every row the agent wrote is in raw exactly once."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path


from warehouse.ingest.load import connect, load_spool

REPO = Path(__file__).resolve().parents[1]


def test_agent_and_loader_concurrently_lose_nothing(tmp_path):
    spool = tmp_path / "spool"
    agent = subprocess.Popen(
        [sys.executable, "-m", "collectors.agent", "--backend", "sim", "--spool", str(spool),
         "--interval-s", "0.1", "--flush-interval-s", "0.5", "--duration-s", "8", "--node", "n1",
         "--sim-devices", "6"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    con = connect(tmp_path / "w.duckdb")
    loads = loaded_while_running = 0
    try:
        while agent.poll() is None:
            rep = load_spool(con, spool)
            loads += 1
            loaded_while_running += rep.files_loaded
            assert rep.files_unreadable == 0 and rep.files_failed == 0
            time.sleep(0.05)
        _out, err = agent.communicate(timeout=30)
    finally:
        if agent.poll() is None:
            agent.kill()
    assert agent.returncode == 0, err
    stats = json.loads(err.strip().splitlines()[-1].split("done ", 1)[1])
    final = load_spool(con, spool)
    assert loads >= 5 and loaded_while_running >= 3  # the loader really ran while the agent wrote
    n_raw, n_keys = con.execute("select count(*), count(distinct (device_id, ts)) from raw.device_samples").fetchone()
    assert n_raw == n_keys == stats["rows_written"] > 0
    files = sorted(str(p) for p in spool.rglob("*.parquet") if not p.name.startswith("."))
    assert len(files) == stats["files_written"]
    spooled = con.execute("""
        select count(*) from (
            select device_id, ts from read_parquet(?, hive_partitioning = false)
            except all
            select device_id, ts from raw.device_samples)
    """, [files]).fetchone()[0]
    assert spooled == 0
    assert con.execute("select count(*) from raw.quarantine").fetchone()[0] == 0
    assert con.execute("select status, count(*) from raw.manifest group by 1").fetchall() == [("loaded", len(files))]
    assert final.files_unreadable == 0
    con.close()
