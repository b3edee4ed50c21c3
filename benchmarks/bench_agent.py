"""Benchmark: CPU cost of the sampling agent with the sim backend.

Runs ``python -m collectors.agent --backend sim`` (default 8 devices x 10 Hz for
20 s) in a child process, reads the child's own CPU time with ``os.wait4``
(user + system) and prints

* CPU use as % of one core over the whole run (start-up included);
* the marginal cost: the difference against a short baseline run (default 2 s,
  which pays the interpreter start, imports and first-flush set-up), as % of one
  core and per device sample in microseconds;
* the sampling thread's own cost per device sample (``sample_cpu_s`` from the
  agent's summary: backend read + buffering, without flushing).

Usage::

    .venv/bin/python benchmarks/bench_agent.py [--devices 8] [--hz 10] [--duration-s 20]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_agent(spool: Path, devices: int, hz: float, duration_s: float, flush_s: float) -> dict:
    """One agent run; wall time, child CPU seconds and the agent's summary."""
    with tempfile.TemporaryFile("w+") as err:
        cmd = [
            sys.executable, "-m", "collectors.agent", "--backend", "sim", "--node", "bench",
            "--sim-devices", str(devices), "--interval-s", str(1.0 / hz), "--duration-s", str(duration_s),
            "--flush-interval-s", str(flush_s), "--spool", str(spool),
        ]
        t0 = time.monotonic()
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall_s = time.monotonic() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        text = err.read()
    if proc.returncode != 0:
        raise SystemExit(f"agent failed ({proc.returncode}):\n{text}")
    summary = json.loads(text.split("tokenwatt collect: done ", 1)[1].splitlines()[0])
    return {"wall_s": wall_s, "cpu_s": usage.ru_utime + usage.ru_stime, "summary": summary}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--devices", type=int, default=8)
    parser.add_argument("--hz", type=float, default=10.0)
    parser.add_argument("--duration-s", type=float, default=20.0)
    parser.add_argument("--flush-interval-s", type=float, default=5.0)
    parser.add_argument("--baseline-s", type=float, default=2.0)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        base = run_agent(Path(tmp) / "base", args.devices, args.hz, args.baseline_s, args.flush_interval_s)
        run = run_agent(Path(tmp) / "run", args.devices, args.hz, args.duration_s, args.flush_interval_s)
        files = sorted((Path(tmp) / "run").rglob("*.parquet"))

    s = run["summary"]
    samples = s["samples_total"]
    extra_cpu_s = run["cpu_s"] - base["cpu_s"]
    extra_wall_s = run["wall_s"] - base["wall_s"]
    extra_samples = samples - base["summary"]["samples_total"]
    print(f"agent, sim backend: {args.devices} devices x {args.hz:g} Hz for {args.duration_s:g} s "
          f"(flush every {args.flush_interval_s:g} s), python {sys.version.split()[0]}")
    print(f"  device samples: {samples} in {s['sample_rounds']} ticks, missed ticks {s['missed_ticks']}, "
          f"dropped rows {s['dropped_rows']}, files {len(files)}")
    print(f"  whole process: {run['cpu_s']:.2f} s CPU over {run['wall_s']:.2f} s wall "
          f"= {100 * run['cpu_s'] / run['wall_s']:.2f} % of one core (start-up included)")
    print(f"  baseline {args.baseline_s:g} s run: {base['cpu_s']:.2f} s CPU, {base['wall_s']:.2f} s wall, "
          f"{base['summary']['samples_total']} samples")
    print(f"  marginal (run - baseline): {extra_cpu_s:.3f} s CPU over {extra_wall_s:.2f} s "
          f"= {100 * extra_cpu_s / extra_wall_s:.2f} % of one core, "
          f"{1e6 * extra_cpu_s / extra_samples:.1f} us per device sample")
    print(f"  sampling thread only (read + buffer): {1e6 * s['sample_cpu_s'] / samples:.1f} us per device sample")

if __name__ == "__main__":
    main()
