"""Spark engine throughput: load and attribution on Spark local mode, per core.

    python -m benchmarks.bench_spark --gpu-days 4 --interval-s 1 --masters 'local[1]' 'local[2]'

The bench fleet of :mod:`benchmarks.bench` (N/4 H100s, one 8B replica each, about 2.8 requests/s
per GPU, 4 days) is simulated once; then, for each master, a fresh interpreter runs the Spark
load (spool -> lake) and the Spark attribution on an empty lake. Each stage reports its wall time
and the CPU seconds of the whole process tree (driver, JVM, Python workers: read from /proc), so
rows per CPU-second is a per-core figure even on a machine shared with other work. The DuckDB
path runs on the same spool for reference (load, then attribution), also with its CPU seconds.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import yaml

from benchmarks.bench import DAYS, bench_fleet

ROOT = Path(__file__).resolve().parents[1]

_TREE_CPU = """
import os
def tree_cpu():
    tck = os.sysconf("SC_CLK_TCK")
    kids = {}
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                st = open(f"/proc/{p}/stat").read()
            except OSError:
                continue
            f = st[st.rindex(")") + 2:].split()
            kids.setdefault(int(f[1]), []).append((int(p), (int(f[11]) + int(f[12]) + int(f[13]) + int(f[14])) / tck))
    me = os.getpid()
    total, todo = 0.0, [me]
    own = open(f"/proc/{me}/stat").read()
    f = own[own.rindex(")") + 2:].split()
    total += (int(f[11]) + int(f[12]) + int(f[13]) + int(f[14])) / tck
    while todo:
        for pid, cpu in kids.get(todo.pop(), []):
            total += cpu
            todo.append(pid)
    return total
"""


def _sub(code: str) -> dict:
    wrapper = "import json, sys, time\nsys.path.insert(0, %r)\n%s\nout = {}\n%s\nprint('BENCH ' + json.dumps(out))\n" % (
        str(ROOT), _TREE_CPU, textwrap.dedent(code))
    proc = subprocess.run([sys.executable, "-c", wrapper], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-3000:])
    return json.loads([l for l in proc.stdout.splitlines() if l.startswith("BENCH ")][-1][6:])


def run(gpu_days: int, interval_s: float, masters: list[str], workdir: Path, seed: int) -> dict:
    home = workdir / f"spark-gd{gpu_days}-i{interval_s:g}"
    if not (home / "sim.json").exists():
        shutil.rmtree(home, ignore_errors=True)
        home.mkdir(parents=True)
        (home / "fleet.yaml").write_text(yaml.safe_dump(bench_fleet(max(1, gpu_days // DAYS))))
        from collectors.sim.simulate import simulate

        simulate(str(home / "fleet.yaml"), home, "2026-10-05", DAYS, interval_s, seed, progress=False)
    meta = json.loads((home / "sim.json").read_text())
    res = {"gpu_days": gpu_days, "interval_s": interval_s, "samples": meta.get("samples"),
           "requests": meta.get("requests"), "engines": {}}
    for master in masters:
        lake = home / "lake"
        shutil.rmtree(lake, ignore_errors=True)
        res["engines"][master] = _sub(f"""
from warehouse.spark.session import spark_session
from warehouse.spark.load import load_spool_spark
from warehouse.spark.attribute import attribute_spark
spark = spark_session({master!r})
spark.range(1).count()  # the JVM up before the clock starts
c0, t0 = tree_cpu(), time.perf_counter()
load_spool_spark(spark, {str(home / 'spool')!r}, {str(lake)!r})
c1, t1 = tree_cpu(), time.perf_counter()
n = attribute_spark(spark, {str(lake)!r})
c2, t2 = tree_cpu(), time.perf_counter()
out.update(load_s=round(t1 - t0, 2), load_cpu_s=round(c1 - c0, 2), attribution_s=round(t2 - t1, 2),
           attribution_cpu_s=round(c2 - c1, 2), request_day_rows=n["request_energy"])
spark.stop()
""")
        shutil.rmtree(lake, ignore_errors=True)
    db = home / "w.duckdb"
    db.unlink(missing_ok=True)
    res["engines"]["duckdb"] = _sub(f"""
from warehouse.ingest.load import connect, load_spool
from warehouse.attribution.run import run_attribution_days
con = connect({str(db)!r})
c0, t0 = tree_cpu(), time.perf_counter()
load_spool(con, {str(home / 'spool')!r})
c1, t1 = tree_cpu(), time.perf_counter()
r = run_attribution_days(con)
c2, t2 = tree_cpu(), time.perf_counter()
out.update(load_s=round(t1 - t0, 2), load_cpu_s=round(c1 - c0, 2), attribution_s=round(t2 - t1, 2),
           attribution_cpu_s=round(c2 - c1, 2), request_day_rows=r["request_day_rows"])
""")
    db.unlink(missing_ok=True)
    rows = (res["samples"] or 0) + (res["requests"] or 0)
    for e in res["engines"].values():
        e["load_rows_per_cpu_s"] = round(rows / e["load_cpu_s"]) if e["load_cpu_s"] else None
        e["attribution_rows_per_cpu_s"] = round(rows / e["attribution_cpu_s"]) if e["attribution_cpu_s"] else None
    return res


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--gpu-days", type=int, nargs="+", default=[4])
    p.add_argument("--interval-s", type=float, default=1.0)
    p.add_argument("--masters", nargs="+", default=["local[1]", "local[2]"])
    p.add_argument("--workdir", default="/tmp/tokenwatt-bench-spark")
    p.add_argument("--seed", type=int, default=7)
    a = p.parse_args(argv)
    work = Path(a.workdir)
    work.mkdir(parents=True, exist_ok=True)
    for n in a.gpu_days:
        r = run(n, a.interval_s, a.masters, work, a.seed)
        r["loadavg_after"] = os.getloadavg()
        print(json.dumps(r), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
