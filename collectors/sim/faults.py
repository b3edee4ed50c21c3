"""The chaos preset's data faults: bad rows in the day-0 files, duplicate, truncated and late files,
and ``truth/faults.parquet``, the record of every fault injected (file, row and field for bad rows).

Which rows go bad is drawn from the seed and a stable digest of the node name, never from the
salted ``hash()``, so a seed reproduces the same files in every process.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa

from collectors import spool as spoolmod
from collectors.names import path_component
from collectors.schema import TS
from collectors.sim.seeds import stable_digest

TRUTH_FAULTS = pa.schema([
    ("fault", pa.string()), ("node", pa.string()), ("device_id", pa.string()), ("file", pa.string()),
    ("row", pa.int64()), ("field", pa.string()), ("detail", pa.string()), ("ts", TS),
])

#: (field, value, reason) of the bad sample rows, in turn
_BAD_SAMPLES = (("power_w", -25.0, "negative power"), ("utilization_pct", 150.0, "utilization outside 0-100"),
                ("power_w", 50_000.0, "power above physical bound for chip"))


def spool_file(kind: str, date: str, node: str) -> str:
    """The spool path (relative) of a node's file of a day, as the simulator writes it."""
    return f"{kind}/date={date}/node={path_component(node)}/{path_component(f'{node}-{date}')}.parquet"


def bad_sample_rows(sim, tbl: pa.Table, node: str, date: str, day: int) -> pa.Table:
    """Day 0: ``bad_rows`` samples of the node get an impossible power or utilisation."""
    n_bad = int(sim.fleet.faults.get("bad_rows", 0) or 0)
    if not n_bad or day != 0 or tbl.num_rows < 100:
        return tbl
    rng = np.random.default_rng([sim.seed, day, 99, stable_digest(node) % 1000])
    rows = rng.choice(tbl.num_rows, size=min(n_bad, tbl.num_rows), replace=False)
    columns = {c: tbl[c].to_numpy(zero_copy_only=False).copy() for c in ("power_w", "utilization_pct")}
    rel = spool_file("device_samples", date, node)
    for j, r in enumerate(sorted(rows)):
        fld, value, why = _BAD_SAMPLES[j % 3]
        columns[fld][r] = value
        sim.faults.append({"fault": "bad_row", "node": node, "device_id": tbl["device_id"][int(r)].as_py(),
                           "file": rel, "row": int(r), "field": fld, "detail": why,
                           "ts": tbl["ts"][int(r)].value / 1e6})
    for c, values in columns.items():
        tbl = tbl.set_column(tbl.schema.get_field_index(c), c, pa.array(values))
    return tbl


def bad_request_rows(sim, tbl: pa.Table, node: str, date: str, day: int) -> pa.Table:
    """Day 0: a third of ``bad_rows`` requests of the node get a negative prompt token count."""
    n_bad = int(sim.fleet.faults.get("bad_rows", 0) or 0)
    if not n_bad or day != 0 or tbl.num_rows < 100:
        return tbl
    rng = np.random.default_rng([sim.seed, day, 98, stable_digest(node) % 1000])
    rows = sorted(rng.choice(tbl.num_rows, size=min(max(n_bad // 3, 1), tbl.num_rows), replace=False))
    toks = tbl["prompt_tokens"].to_numpy().copy()
    rel = spool_file("requests", date, node)
    for r in rows:
        toks[r] = -5
        sim.faults.append({"fault": "bad_row", "node": node, "device_id": None, "file": rel, "row": int(r),
                           "field": "prompt_tokens", "detail": "negative token count",
                           "ts": tbl["arrival_ts"][int(r)].value / 1e6,
                           "request_id": tbl["request_id"][int(r)].as_py()})
    return tbl.set_column(tbl.schema.get_field_index("prompt_tokens"), "prompt_tokens", pa.array(toks))


def _copy_into(sim, src: Path, dst: Path, data: bytes, fault: str, detail: str) -> None:
    tmp = dst.with_name("." + dst.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(dst)
    sim.faults.append({"fault": fault, "file": dst.relative_to(sim.spool).as_posix(), "detail": detail})


def inject_file_faults(sim) -> None:
    """After the last day: duplicate and truncated copies, then the late files."""
    f = sim.fleet.faults
    rng = np.random.default_rng([sim.seed, 0, 0, 11])
    samples = [p for p in sim.written if "/device_samples/" in p.as_posix()]
    reqs = [p for p in sim.written if "/requests/" in p.as_posix()]
    for j in range(int(f.get("duplicate_files", 0) or 0)):
        pool = samples if j % 2 == 0 else reqs
        if not pool:
            continue
        src = pool[int(rng.integers(len(pool)))]
        dst = src.with_name(src.stem + f"-dup{j}.parquet")
        shutil.copyfile(src, dst)
        sim.faults.append({"fault": "duplicate_file", "file": dst.relative_to(sim.spool).as_posix(),
                           "detail": f"byte-identical copy of {src.relative_to(sim.spool).as_posix()}"})
    if f.get("truncated_file") and samples:
        src = samples[int(rng.integers(len(samples)))]
        data = src.read_bytes()
        _copy_into(sim, src, src.with_name(src.stem + "-truncated.parquet"), data[: len(data) * 6 // 10],
                   "truncated_file",
                   f"first 60% of the bytes of {src.relative_to(sim.spool).as_posix()} (its rows are also in the original)")
    for path, tbl in sim.late_files:
        spoolmod.write_atomic(tbl, path)
        sim.faults.append({"fault": "late_file", "file": path.relative_to(sim.spool).as_posix(),
                           "detail": "delivered after every later day had been written"})


def write_faults(sim) -> None:
    """``truth/faults.parquet``: every fault injected."""
    rows = sim.faults
    tbl = pa.table({
        "fault": [r["fault"] for r in rows], "node": [r.get("node") for r in rows],
        "device_id": [r.get("device_id") for r in rows], "file": [r.get("file") for r in rows],
        "row": pa.array([r.get("row") for r in rows], pa.int64()), "field": [r.get("field") for r in rows],
        "detail": [r.get("detail") for r in rows],
        "ts": pa.array([None if r.get("ts") is None else int(round(r["ts"] * 1e6)) for r in rows],
                       pa.int64()).cast(TS),
    }, schema=TRUTH_FAULTS)
    spoolmod.write_atomic(tbl, sim.truth / "faults.parquet")
