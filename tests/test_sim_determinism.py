"""A seed reproduces the spool byte for byte: two `tokenwatt simulate` runs with the same arguments,
in two fresh processes whose str hash() is salted differently, write the same files.

The fleet switches on the faults whose choices used to come from hash() (device UUIDs, the bad rows
of the chaos preset) and those that write extra files (duplicates, a truncated and a late file).
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

FLEET = """\
extends: tiny
name: tiny-chaos
faults:
  clock_skew: {node: asic-0, skew_s: 2.5}
  duplicate_files: 2
  late_file: {day: 0}
  truncated_file: true
  bad_rows: 12
"""


def simulate(tmp: Path, home: str, hash_seed: str, seed: int = 7) -> Path:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONHASHSEED": hash_seed}
    subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "simulate", "--fleet", str(tmp / "fleet.yaml"), "--days", "1",
         "--interval-s", "60", "--seed", str(seed), "--home", str(tmp / home)],
        check=True, env=env, cwd=ROOT, capture_output=True, timeout=300,
    )
    return tmp / home


def files(home: Path) -> dict[str, bytes]:
    """Every file of the spool and the ground truth, by path relative to the home."""
    return {p.relative_to(home).as_posix(): p.read_bytes()
            for sub in ("spool", "truth") for p in sorted((home / sub).rglob("*")) if p.is_file()}


def test_same_seed_same_bytes_whatever_the_hash_salt(tmp_path):
    (tmp_path / "fleet.yaml").write_text(FLEET)
    a = files(simulate(tmp_path, "a", "1"))
    b = files(simulate(tmp_path, "b", "2"))
    assert any("/device_samples/" in k for k in a) and any(k.endswith("-late.parquet") for k in a)
    assert any("-dup" in k for k in a) and any(k.endswith("-truncated.parquet") for k in a)
    assert sorted(a) == sorted(b)
    differing = [k for k in a if a[k] != b[k]]
    assert not differing, f"files that differ between the two runs: {differing}"

    # the seed matters: another seed gives other bytes (so the comparison above can fail)
    c = files(simulate(tmp_path, "c", "1", seed=8))
    common = [k for k in a if k in c and "/device_samples/" in k]
    assert common and all(a[k] != c[k] for k in common)
