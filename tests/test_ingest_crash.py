"""Crash safety: `tokenwatt run` killed with SIGKILL in the middle of the load; the next run
converges to the same warehouse as a clean run of the same spool."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
TABLES = ["raw.device_samples", "raw.requests", "raw.replicas", "raw.quarantine", "raw.manifest",
          "attribution.request_energy", "attribution.device_day",
          "marts.fct_request_energy", "marts.fct_device_energy_daily", "marts.fct_cost_per_token_daily",
          "marts.fct_device_power_hourly", "marts.fct_pnl_daily"]


def checksums(home: Path, tables=TABLES) -> dict:
    from warehouse.ingest.checksum import table_checksums

    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        out = table_checksums(con, tables)
        # the manifest without where and when: fingerprints differ between copies of a spool
        out["raw.manifest"] = con.execute(
            "select count(*), sum(hash(file, sha256, rows, rows_quarantined, status)::hugeint) from raw.manifest").fetchone()
        return out
    finally:
        con.close()


def test_sigkill_mid_load_then_rerun_converges_to_a_clean_run(tmp_path):
    from collectors.sim.simulate import simulate
    from pipelines.cli import run_pipeline

    sim = tmp_path / "sim"
    simulate("chaos", sim, "2026-10-01", 2, 30.0, 5, progress=False)
    clean, crashed = tmp_path / "clean", tmp_path / "crashed"
    shutil.copytree(sim, clean)
    shutil.copytree(sim, crashed)
    assert run_pipeline(clean, raise_on_error=False).success

    # small batches: the load commits many times, and the kill lands between two of them
    env = dict(os.environ, TOKENWATT_LOAD_BATCH_ROWS="20000", PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "pipelines.cli", "run", "--home", str(crashed)], cwd=REPO,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    killed_after = None
    try:
        deadline = time.monotonic() + 240
        for line in proc.stderr:
            if "load: requests batch 3/" in line and "committed" in line:
                proc.send_signal(signal.SIGKILL)
                killed_after = line.strip()
                break
            if time.monotonic() > deadline:
                break
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=60)
    assert killed_after is not None, "the load never reached its third requests batch"
    assert proc.returncode == -signal.SIGKILL

    # what the killed run left: whole batches only (some files loaded, the rest not yet)
    con = duckdb.connect(str(crashed / "warehouse.duckdb"), read_only=True)
    try:
        loaded = con.execute("select count(*) from raw.manifest where kind = 'requests'").fetchone()[0]
        per_file = con.execute("""
            select count(*) from raw.manifest m
            where kind = 'requests' and status = 'loaded'
              and rows <> (select count(*) from raw.requests r where r._file = m.file)""").fetchone()[0]
    finally:
        con.close()
    assert per_file == 0  # no file is half loaded
    total = len([p for p in (crashed / "spool" / "requests").rglob("*.parquet")])
    assert 0 < loaded < total

    assert run_pipeline(crashed, raise_on_error=False).success
    assert checksums(crashed) == checksums(clean)
