"""Issue 19, class 11: the simulator never writes outside its home.

`tokenwatt simulate` with node names that are path parts (``../../outside``, ``..``) and, as the
variant, names with separators, a leading dot and 198 characters (cut with a digest): every file written is inside
the home, the spool partitions and file names are the mapped ones (collectors.names.path_component),
and the faults record names files that exist.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import yaml

ROOT = Path(__file__).resolve().parents[1]

from collectors.names import path_component  # noqa: E402


def fleet(names: list[str]) -> dict:
    chips = ["nvidia-h100-sxm", "amd-mi300x", "custom-asic"]
    return {
        "name": "hostile",
        "nodes": [{"name": n, "chip": chips[i % 3], "devices": 1} for i, n in enumerate(names)],
        "replicas": [{"node": n, "model": "llama-8b", "devices": [0]} for n in names],
        "traffic": {"mode": "synthetic", "requests_per_s": {"llama-8b": 0.5},
                    "tasks": {"chat": 1.0}, "languages": {"en": 1.0}, "tiers": {"api": 1.0}},
        "faults": {"late_file": {"day": 0}, "bad_rows": 6, "duplicate_files": 2, "truncated_file": True,
                   "clock_skew": {"node": names[0], "skew_s": 1.5}},
    }


def every_file(root: Path) -> set[Path]:
    return {Path(d) / f for d, _dirs, files in os.walk(root) for f in files}


def simulate_in(tmp_path: Path, names: list[str]) -> Path:
    work = tmp_path / "a" / "b" / "c"
    work.mkdir(parents=True)
    (work / "fleet.yaml").write_text(yaml.safe_dump(fleet(names)))
    before = every_file(tmp_path)
    home = work / "home"
    proc = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "simulate", "--fleet", "fleet.yaml", "--days", "1",
         "--interval-s", "60", "--seed", "3", "--home", "home"],
        cwd=work, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    new = every_file(tmp_path) - before
    outside = [p for p in new if not p.resolve().is_relative_to(home.resolve())]
    assert not outside, f"written outside the home: {outside}"
    assert new, "the simulation wrote nothing"
    return home


def check_layout(home: Path, names: list[str]) -> None:
    for kind in ("device_samples", "requests"):
        nodes = {p.name for p in (home / "spool" / kind / "date=2026-10-01").iterdir()}
        assert nodes == {f"node={path_component(n)}" for n in names}
    truth_nodes = {p.name for p in (home / "truth" / "requests" / "date=2026-10-01").iterdir()}
    assert truth_nodes == {f"node={path_component(n)}" for n in names}
    faults = pq.read_table(home / "truth" / "faults.parquet").to_pylist()
    files = [f["file"] for f in faults if f["file"]]
    assert any(f["fault"] == "late_file" for f in faults) and any(f["fault"] == "bad_row" for f in faults)
    for rel in files:
        assert (home / "spool" / rel).is_file(), rel
        assert ".." not in Path(rel).parts


def test_path_part_node_names_stay_inside_the_home(tmp_path):
    names = ["h100-0", "..", "../../outside"]
    home = simulate_in(tmp_path, names)
    check_layout(home, names)
    late = [p for p in (home / "spool").rglob("*-late.parquet")]
    assert len(late) == 1 and late[0].parent.name == f"node={path_component('../../outside')}"
    # the names are kept as data inside the files
    rows = pq.read_table(late[0]).column("node").to_pylist()
    assert set(rows) == {"../../outside"}


def test_variant_separators_leading_dots_and_long_names(tmp_path):
    names = ["a/b\\c", ".hidden", "x" * 190 + "/../../y", "spaces and *?[glob]"]
    home = simulate_in(tmp_path, names)
    check_layout(home, names)
    assert not [p for p in (home / "spool").rglob("*") if p.name.startswith(".")]
