"""One-day rerun of a built home: the partitioned run for one UTC day, timed per step, with dbt's
own per-model timings (HOME/dbt/target/run_results.json).

    python -m benchmarks.bench_rerun --home DIR [--day YYYY-MM-DD]   # default: the last day with data

This is what the spool sensor asks for when a late file lands for an old day (pipelines/ingest.py):
load, attribution and the dbt marts over that one day, everything else once.
"""
from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path


def step_seconds(instance, run_id: str) -> dict[str, float]:
    """Wall seconds per step of the run, from the instance's step stats."""
    return {s.step_key: s.end_time - s.start_time for s in instance.get_run_step_stats(run_id)
            if s.start_time is not None and s.end_time is not None}


def dbt_node_seconds(home: Path) -> tuple[float, list[tuple[str, float]]]:
    """dbt's elapsed time and execution time per node, slowest first (of the last dbt call)."""
    rr = json.loads((home / "dbt" / "target" / "run_results.json").read_text())
    nodes = sorted(((r["unique_id"], r["execution_time"]) for r in rr["results"]), key=lambda x: -x[1])
    return rr["elapsed_time"], nodes


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_rerun", description=__doc__.splitlines()[0])
    p.add_argument("--home", required=True)
    p.add_argument("--day", help="UTC day to rerun (default: the last day with data)")
    p.add_argument("--top", type=int, default=15, help="dbt nodes listed (slowest first)")
    args = p.parse_args(argv)
    home = Path(args.home).resolve()
    from pipelines.cli import run_pipeline
    from pipelines.ingest import data_window
    from pipelines.instance import home_instance

    day = args.day or data_window(home)[1]
    instance = home_instance(home)
    cpu = lambda who: (lambda r: r.ru_utime + r.ru_stime)(resource.getrusage(who))  # noqa: E731
    try:
        t0, self0, kids0 = time.perf_counter(), cpu(resource.RUSAGE_SELF), cpu(resource.RUSAGE_CHILDREN)
        result = run_pipeline(home, days=(day, day), raise_on_error=False, instance=instance)
        wall = time.perf_counter() - t0
        self_cpu, kids_cpu = cpu(resource.RUSAGE_SELF) - self0, cpu(resource.RUSAGE_CHILDREN) - kids0
        steps = step_seconds(instance, result.run_id)
    finally:
        instance.dispose()
    elapsed, nodes = dbt_node_seconds(home)
    print(f"rerun {day}: {'ok' if result.success else 'FAILED'} in {wall:.1f} s (run_pipeline, definitions included)")
    # CPU seconds hold up better than wall time on a shared machine: the in-process steps, and the
    # subprocesses (dbt parse and dbt build)
    print(f"  cpu: pipeline process {self_cpu:.1f} s, subprocesses (dbt) {kids_cpu:.1f} s")
    for k, s in sorted(steps.items(), key=lambda x: -x[1]):
        print(f"  step {k:<40}{s:>7.1f} s")
    print(f"  dbt run_results elapsed {elapsed:.1f} s; slowest nodes:")
    for uid, s in nodes[:args.top]:
        print(f"    {uid:<70}{s:>7.2f} s")
    return 0 if result.success else 1


if __name__ == "__main__":
    sys.exit(main())
