"""The `tokenwatt` command line.

    tokenwatt simulate --fleet FILE_OR_PRESET --start DATE --days N --interval-s S --seed N --home DIR
    tokenwatt run      --home DIR           # load, attribute, dbt build, site: everything, in-process
    tokenwatt run      --engine spark --home DIR   # load and attribution on Spark (HOME/spark)
    tokenwatt demo     --home DIR           # simulate the default fleet, run, print a summary
    tokenwatt evaluate --home DIR [--json]  # score attribution against the simulator's ground truth
    tokenwatt calibrate                      # simulated J/token vs ML.ENERGY measurements
    tokenwatt bench    --gpu-days N ...      # attribution speed at scale
    tokenwatt site     --home DIR           # rebuild the dashboard site
    tokenwatt collect  --backend auto|nvidia|amd|prometheus|sim ...
    tokenwatt export focus --home DIR --out FILE
    tokenwatt receive otlp --spool DIR      # OTLP/HTTP trace receiver (vLLM/SGLang request spans)
    tokenwatt convert otlp --file F --spool DIR   # a Collector file exporter's output, offline
    tokenwatt replicas --file replicas.yaml --spool DIR   # the replica -> devices map
    tokenwatt import prometheus --url URL --start T --end T --step S --spool DIR   # exporter history

Heavy imports (Dagster, dbt, vendor libraries) happen inside the subcommand that needs them.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def _home_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--home", default="data", help="tokenwatt home directory (default ./data)")


def cmd_simulate(args) -> int:
    from collectors.sim.fleet import FleetError
    from collectors.sim.simulate import simulate

    try:
        meta = simulate(args.fleet, args.home, args.start, args.days, args.interval_s, args.seed)
    except FleetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(meta, indent=2))
    return 0


def run_pipeline(home: str | Path, selection: str | None = None, raise_on_error: bool = True,
                 days: tuple[str, str] | None = None, instance=None):
    """Materialise every asset in-process against ``home`` (what `tokenwatt run` does).

    The day-partitioned assets (load, attribution, dbt marts) run once over ``days`` (first, last;
    default: every day the spool has data for) as a single run over that partition range, and
    every other asset once. On an empty spool nothing is partitioned and everything runs once.
    The run is recorded in ``instance``, by default the home's persistent one (HOME/dagster).
    """
    import warnings

    import dagster as dg

    from collectors.home import Home

    home = Home(home)
    home.root.mkdir(parents=True, exist_ok=True)
    warnings.filterwarnings("ignore", category=dg.BetaWarning)
    from pipelines.definitions import build_definitions
    from pipelines.ingest import data_window, partition_tags

    from pipelines.instance import home_instance

    defs = build_definitions(str(home.root))  # the home travels as an argument, never via os.environ
    days = days or data_window(home)
    tags = partition_tags(*days) if days else None
    own = instance is None  # default: the home's persistent instance (HOME/dagster), which `make dev` shows
    instance = home_instance(home) if own else instance
    try:
        return dg.materialize(list(defs.assets), resources=defs.resources, instance=instance,
                              raise_on_error=raise_on_error, selection=selection, tags=tags)
    finally:
        if own:
            instance.dispose()


def cmd_run_spark(args) -> int:
    """`tokenwatt run --engine spark`: load and attribution on Spark (see warehouse/spark/run.py)."""
    from warehouse.spark.session import SparkMissing

    t0 = time.perf_counter()
    print(f"tokenwatt run: home {Path(args.home).resolve()}, engine spark", file=sys.stderr)
    try:
        from warehouse.spark.run import run_spark

        out = run_spark(args.home, args.spark_master)
    except SparkMissing as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(out, indent=2, default=str))
    print(f"tokenwatt run: ok in {time.perf_counter() - t0:.1f} s (load and attribution on Spark; not on Spark "
          f"yet: {', '.join(out['not_on_spark'])} - run with --engine duckdb for those)", file=sys.stderr)
    return 0


def cmd_run(args) -> int:
    import dagster as dg

    if getattr(args, "engine", "duckdb") == "spark":
        return cmd_run_spark(args)
    t0 = time.perf_counter()
    print(f"tokenwatt run: home {Path(args.home).resolve()}", file=sys.stderr)
    result = run_pipeline(args.home, raise_on_error=False)
    checks = [e for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"]
    not_passed = [e for e in checks if not e.event_specific_data.passed]
    failed_checks = [e for e in not_passed if e.event_specific_data.severity != dg.AssetCheckSeverity.WARN]
    print(f"tokenwatt run: {'ok' if result.success else 'FAILED'} in {time.perf_counter() - t0:.1f} s; "
          f"{len(checks)} asset checks, {len(failed_checks)} failed, {len(not_passed) - len(failed_checks)} warned",
          file=sys.stderr)
    for e in not_passed:  # a WARN-severity check that did not pass is reported, but does not fail the run
        c = e.event_specific_data
        what = "FAILED" if e in failed_checks else "WARNING"
        detail = c.metadata.get("failures" if e in failed_checks else "warnings")
        print(f"tokenwatt run: CHECK {what} {c.asset_key.to_user_string()} {c.check_name}"
              + (f": {detail.value}" if detail is not None and detail.value not in ("none", "") else ""),
              file=sys.stderr)
    return 0 if result.success and not failed_checks else 1


def summary_table(db: Path) -> str:
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = con.execute("""
            select chip, vendor, count(*) as requests,
                   sum(energy_j) / sum(prompt_tokens + completion_tokens) as j_per_token,
                   sum(energy_j) / sum(completion_tokens) as j_per_output_token,
                   sum(cost_usd) / sum(prompt_tokens + completion_tokens) * 1e6 as usd_per_mtok,
                   sum(usage_cost_usd) / sum(prompt_tokens + completion_tokens) * 1e6 as usage_usd_per_mtok
            from marts.fct_request_energy group by all order by chip
        """).fetchall()
        conserv = con.execute("""
            select max(abs(residual_j) / greatest(measured_energy_j, 1)) from marts.fct_device_energy_daily
        """).fetchone()[0]
    finally:
        con.close()
    lines = [f"{'chip':<18}{'vendor':<8}{'requests':>12}{'J/token':>10}{'J/out tok':>11}{'$/Mtok':>9}{'$/Mtok usage':>14}"]
    for r in rows:
        lines.append(f"{r[0]:<18}{r[1]:<8}{r[2]:>12,}{r[3]:>10.3f}{r[4]:>11.3f}{r[5]:>9.3f}{r[6]:>14.3f}")
    lines.append(f"worst device-day conservation residual: {conserv:.2e} (relative)")
    return "\n".join(lines)


def cmd_demo(args) -> int:
    from collectors.sim.simulate import simulate

    t0 = time.perf_counter()
    home = Path(args.home).resolve()
    if (home / "warehouse.duckdb").exists() or (home / "spool").exists():
        import shutil

        print(f"demo: clearing previous demo data in {home}", file=sys.stderr)
        for sub in ("spool", "truth", "site", "dagster"):  # dagster: the run history of the old data
            shutil.rmtree(home / sub, ignore_errors=True)
        for f in ("warehouse.duckdb", "warehouse.duckdb.wal", "sim.json"):
            (home / f).unlink(missing_ok=True)
    print(f"demo: simulating fleet '{args.fleet}' for {args.days} days at {args.interval_s} s sampling",
          file=sys.stderr)
    meta = simulate(args.fleet, home, args.start, args.days, args.interval_s, args.seed)
    t1 = time.perf_counter()
    print(f"demo: simulated {meta['requests']:,} requests and {meta['samples']:,} samples in {t1 - t0:.1f} s",
          file=sys.stderr)
    # the simulated fleet has ground truth: score the attribution against it (one day re-simulated
    # per sampling interval) into attribution.quality before the pipeline, whose site shows it
    from warehouse.attribution.evaluate import evaluate_home, format_report
    from warehouse.ingest.load import connect

    connect(home / "warehouse.duckdb").close()
    quality = evaluate_home(home)
    t2 = time.perf_counter()
    result = run_pipeline(home, raise_on_error=False)
    t3 = time.perf_counter()
    if not result.success:
        print("demo: pipeline FAILED (see the log above)", file=sys.stderr)
        return 1
    print(f"\ntokenwatt demo: {meta['days']} days of fleet '{meta['fleet']}', "
          f"{meta['requests']:,} requests (simulate {t1 - t0:.0f} s, evaluate {t2 - t1:.0f} s, "
          f"pipeline {t3 - t2:.0f} s)\n")
    print(summary_table(home / "warehouse.duckdb"))
    from warehouse.footprint.summary import footprint_lines

    print("\n".join(footprint_lines(home / "warehouse.duckdb")))
    print()
    print(format_report(quality))
    print(f"\nwarehouse: {home / 'warehouse.duckdb'}")
    print(f"site:      {home / 'site' / 'index.html'}")
    return 0


def cmd_site(args) -> int:
    from dashboards.site import build_site

    home = Path(args.home).resolve()
    result = build_site(home / "warehouse.duckdb", home / "site")
    print(json.dumps(result, indent=2, default=str))
    return 0


def cmd_evaluate(args) -> int:
    from warehouse.attribution.evaluate import evaluate_home

    report = evaluate_home(Path(args.home), intervals=args.intervals, days=args.days)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        from warehouse.attribution.evaluate import format_report

        print(format_report(report))
    return 0


def cmd_calibrate(args) -> int:
    from collectors.sim.calibrate import calibrate, calibrate_pairs

    if args.fit:  # the perf rows models.yaml carries, fitted to ML.ENERGY v3 (measurements.yaml)
        from collectors.sim.mlenergy import fitted_rows, rows_yaml

        print(rows_yaml(fitted_rows()))
        return 0
    pairs = calibrate_pairs()
    report = {"all_inside": True, "text": ""} if args.pairs_only else calibrate(args.fleet, hours=args.hours,
                                                                                seed=args.seed)
    report["pairs"] = pairs["rows"]
    report["all_inside"] = bool(report["all_inside"] and pairs["all_inside"])
    print(json.dumps(report, indent=2) if args.json else (pairs["text"] + "\n\n" + report["text"]).strip())
    return 0 if report["all_inside"] else 1


def cmd_bench(args) -> int:
    from benchmarks.bench import STAGES, bench

    stages = ("load",) if args.stages == "load" else STAGES
    bench(args.gpu_days, args.interval_s, args.workdir, args.seed, json_out=args.json, stages=stages)
    return 0


def cmd_replicas(args) -> int:
    from collectors.replicas import run_replicas

    return run_replicas(args)


def _pipeline_commands(sub) -> None:
    """simulate, run, demo, site: the simulator and the pipeline."""
    p = sub.add_parser("simulate", help="simulate a fleet into a spool, with ground truth")
    p.add_argument("--fleet", default="default", help="fleet YAML file or preset (default, tiny, chaos)")
    p.add_argument("--start", default="2026-10-01", help="first UTC day (YYYY-MM-DD)")
    p.add_argument("--days", type=int, default=28)
    p.add_argument("--interval-s", type=float, default=15.0, help="device sampling interval in seconds")
    p.add_argument("--seed", type=int, default=42)
    _home_arg(p)
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("run", help="load, attribute, transform and publish (all assets, in-process)")
    _home_arg(p)
    p.add_argument("--engine", choices=("duckdb", "spark"), default="duckdb",
                   help="duckdb (default: everything) or spark (load and attribution on Spark, into HOME/spark)")
    p.add_argument("--spark-master", default=None,
                   help="Spark master for --engine spark (default TOKENWATT_SPARK_MASTER or local[2])")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("demo", help="simulate the demo fleet, run everything, print a summary")
    _home_arg(p)
    p.add_argument("--fleet", default="demo", help="fleet file or preset (demo = the 2026 fleet, demo-2026)")
    p.add_argument("--start", default="2026-10-01")
    p.add_argument("--days", type=int, default=28)
    p.add_argument("--interval-s", type=float, default=30.0)
    p.add_argument("--seed", type=int, default=42)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("site", help="rebuild the static dashboard site from the warehouse")
    _home_arg(p)
    p.set_defaults(func=cmd_site)


def _measure_commands(sub) -> None:
    """evaluate, calibrate, bench: how good and how fast."""
    p = sub.add_parser("evaluate", help="score attribution against the simulator's ground truth")
    _home_arg(p)
    p.add_argument("--json", action="store_true")
    p.add_argument("--intervals", type=float, nargs="+", default=[1, 5, 15, 30, 60])
    p.add_argument("--days", type=int, default=1, help="days re-simulated per sampling interval")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("calibrate", help="simulated J/token against ML.ENERGY measured ranges")
    p.add_argument("--fleet", default="default")
    p.add_argument("--hours", type=float, default=24)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--json", action="store_true")
    p.add_argument("--fit", action="store_true", help="print the perf rows fitted to ML.ENERGY v3 and exit")
    p.add_argument("--pairs-only", action="store_true", help="only the measured (model, chip) pairs, no fleet run")
    p.set_defaults(func=cmd_calibrate)

    p = sub.add_parser("bench", help="attribution speed and memory at fleet scale")
    p.add_argument("--gpu-days", type=int, nargs="+", default=[16, 32, 64, 128])
    p.add_argument("--interval-s", type=float, default=1.0)
    p.add_argument("--workdir", default="/tmp/tokenwatt-bench")
    p.add_argument("--stages", choices=("all", "load"), default="all",
                   help="load: only simulate, load and the one-pass yardstick (no attribution, dbt, site)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_bench)


def _field_commands(sub) -> None:
    """collect, receive/convert otlp, import prometheus, replicas: feeding a real fleet in."""
    p = sub.add_parser("collect", help="sample real devices (or a simulated one) into a spool")
    from collectors.agent import add_collect_arguments, run_collect

    add_collect_arguments(p)
    p.set_defaults(func=run_collect)

    from collectors.otlp_cli import add_otlp_arguments

    add_otlp_arguments(sub)

    from collectors.prometheus_history import add_import_arguments

    add_import_arguments(sub)

    p = sub.add_parser("replicas", help="declare which devices serve which replica (replicas.yaml -> spool)")
    p.add_argument("--file", type=Path, required=True, help="replicas YAML file (docs/collectors.md)")
    p.add_argument("--spool", type=Path, required=True, help="spool directory")
    p.set_defaults(func=cmd_replicas)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tokenwatt", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    _pipeline_commands(sub)
    _measure_commands(sub)
    _field_commands(sub)

    from warehouse.money.focus import add_export_arguments
    from warehouse.money.focus_check import add_check_arguments

    add_export_arguments(sub)
    add_check_arguments(sub)

    from dashboards.metrics import add_serve_arguments

    add_serve_arguments(sub)

    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
