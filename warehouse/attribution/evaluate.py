"""Score attribution against the simulator's ground truth, and the methods people use instead.

For each sampling interval, the home's fleet (same file, seed and start) is re-simulated for a
short span into a scratch directory, loaded and attributed exactly as `tokenwatt run` does, and
compared request by request with the truth. Scored on the same data: the three honest baselines
of :mod:`.baselines` (the headline compares tokenwatt with the best of them) and two naive
methods, ``rated`` (rated power x devices x duration) and ``even`` (each device-day's measured
energy divided evenly among the requests its replica served that day). tokenwatt's error is broken
down by chip, model, task and request duration relative to the sampling interval.
"""
from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from warehouse.attribution.baselines import NAMES as BASELINES, build_baselines
from warehouse.attribution.run import catalog_chips, run_attribution_days
from warehouse.ingest.load import connect, load_spool

NAIVE = ("naive_rated_power_x_duration", "naive_even_split")
METHODS = ("tokenwatt",) + tuple(f"baseline_{b}" for b in BASELINES) + NAIVE
INTERVALS_S = (1, 5, 15, 30, 60)
#: request duration over the sampling interval, bucket lower bounds
DURATION_BUCKETS = ((0, "<1x"), (1, "1-3x"), (3, "3-10x"), (10, "10-30x"), (30, ">=30x"))


def _read_truth(root: Path, depth: int, columns: list[str]) -> pa.Table:
    """The simulator's truth files under ``root`` (``depth`` folders deep), read by pyarrow: the
    paths are listed here and never become SQL text or a DuckDB glob (a quote or ``*`` in the
    scratch directory is just a character)."""
    files = sorted(str(p) for p in root.glob("/".join(["*"] * depth) + ".parquet") if p.is_file())
    if not files:
        raise FileNotFoundError(f"{root}: no ground-truth files")
    return pa.concat_tables([pq.read_table(f, columns=columns) for f in files])


def _ape(col: str, truth: str = "true_energy_j") -> str:
    return f"abs({col} / {truth} - 1)"


def _breakdown(con, col: str, key: str) -> dict:
    rows = con.execute(f"""
        select {key} as k, median({_ape(col)}) * 100, quantile_cont({_ape(col)}, 0.95) * 100, count(*)
        from _eval where true_energy_j > 0 group by 1 order by 1
    """).fetchall()
    return {str(k): {"median_ape_pct": round(float(m), 3), "p95_ape_pct": round(float(p), 3), "requests": int(n)}
            for k, m, p, n in rows}


def _score(con: duckdb.DuckDBPyConnection, col: str, breakdown: bool = False) -> dict:
    """Median and p95 absolute percentage error per request, J/token error per chip and model."""
    r = con.execute(f"""
        select median({_ape(col)}) * 100, quantile_cont({_ape(col)}, 0.95) * 100, count(*)
        from _eval where true_energy_j > 0
    """).fetchone()
    per = con.execute(f"""
        select chip, model, (sum({col}) / sum(total_tokens)) / (sum(true_energy_j) / sum(total_tokens)) - 1
        from _eval group by all order by all
    """).fetchall()
    out = {"median_ape_pct": round(float(r[0]), 3), "p95_ape_pct": round(float(r[1]), 3), "requests": int(r[2]),
           "j_per_token_error_pct": {f"{c}/{m}": round(float(e) * 100, 3) for c, m, e in per}}
    if breakdown:
        out["by_chip"] = _breakdown(con, col, "chip")
        out["by_model"] = _breakdown(con, col, "model")
        out["by_task"] = _breakdown(con, col, "coalesce(task, 'unknown')")
        out["by_duration_vs_interval"] = _breakdown(con, col, "duration_bucket")
    return out


def _reference_tables(con, truth: Path, interval_s: float) -> None:
    """Truth, replicas, rated power and the even split, as temp tables for ``_eval``."""
    con.register("_truth_requests", _read_truth(truth / "requests", 3, ["request_id", "true_energy_j",
                                                                         "true_active_energy_j"]))
    con.execute("create or replace temp table _truth as select * from _truth_requests")
    con.unregister("_truth_requests")
    con.execute("""
        create or replace temp table _attr as
        select request_id, sum(active_energy_j) as active_energy_j, sum(energy_j) as energy_j
        from attribution.request_energy group by 1
    """)
    con.execute("""
        create or replace temp table _rep as
        select replica_id, any_value(chip) as chip, any_value(model) as model,
               len(any_value(device_ids)) as n_dev
        from raw.replicas group by 1
    """)
    con.execute("create or replace temp table _rated (chip varchar, rated_w double)")
    con.executemany("insert into _rated values (?, ?)",
                    [(k, float(v["rated_power_w"])) for k, v in catalog_chips().items()])
    con.execute("""
        create or replace temp table _even as
        with d as (select replica_id, date, sum(measured_energy_j) as e from attribution.device_day
                   where replica_id is not null group by all),
             n as (select replica_id, cast(coalesce(scheduled_ts, arrival_ts) as date) as date, count(*) as k
                   from raw.requests group by all)
        select n.replica_id, n.date, d.e / n.k as even_j from n join d using (replica_id, date)
    """)
    iv = float(interval_s)  # a number (float() of it), formatted as a literal: macros take no parameters
    bucket = " ".join(f"when dur_s / {iv!r} >= {lo} then '{name}'" for lo, name in reversed(DURATION_BUCKETS))
    con.execute(f"create or replace temp macro _bucket(dur_s) as case {bucket} end")


def _eval_table(con) -> None:
    joins = "\n".join(f"left join _bl_{b} bl_{b} using (request_id)" for b in BASELINES)
    cols = ", ".join(f"coalesce(bl_{b}.energy_j, 0) as baseline_{b}" for b in BASELINES)
    con.execute(f"""
        create or replace temp table _eval as
        select r.request_id, p.chip, p.model, r.task, r.prompt_tokens + r.completion_tokens as total_tokens,
               _bucket(epoch_us(r.finish_ts - coalesce(r.scheduled_ts, r.arrival_ts)) / 1e6) as duration_bucket,
               a.energy_j as tokenwatt, a.active_energy_j, t.true_energy_j, t.true_active_energy_j,
               rt.rated_w * p.n_dev * epoch_us(r.finish_ts - coalesce(r.scheduled_ts, r.arrival_ts)) / 1e6
                   as naive_rated_power_x_duration,
               coalesce(ev.even_j, 0) as naive_even_split, {cols}
        from raw.requests r
        join _attr a using (request_id)
        join _truth t using (request_id)
        join _rep p using (replica_id)
        left join _rated rt on rt.chip = p.chip
        left join _even ev on ev.replica_id = r.replica_id
            and ev.date = cast(coalesce(r.scheduled_ts, r.arrival_ts) as date)
        {joins}
    """)


def _fleet_figures(con, truth: Path) -> dict:
    measured = con.execute("select sum(measured_energy_j) from attribution.device_day").fetchone()[0]
    true_dev = float(pc.sum(_read_truth(truth / "devices", 2, ["true_energy_j"])["true_energy_j"]).as_py())
    residual = con.execute("""
        select max(greatest(abs(attributed_active_j + shared_idle_j + unused_j - measured_energy_j),
                            abs(attributed_active_j - request_side_active_j),
                            abs(shared_idle_j - request_side_idle_j)) / greatest(measured_energy_j, 1))
        from attribution.device_day
    """).fetchone()[0]
    pm = con.execute("""
        select count(*) filter (where fallback_reason is null), count(*),
               list(distinct fallback_reason) filter (where fallback_reason is not null)
        from attribution.power_model
    """).fetchone()
    return {"fleet_energy_error_pct": round((measured / true_dev - 1) * 100, 4),
            "conservation_residual_rel": float(residual),
            "power_model": {"learned_device_days": int(pm[0]), "device_days": int(pm[1]),
                            "fallback_reasons": sorted(pm[2] or [])}}


def evaluate_dir(home: Path, interval_s: float | None = None) -> dict:
    """Attribute a simulated home (spool + truth) and score every method; returns the report."""
    home = Path(home)
    if interval_s is None:
        interval_s = float(json.loads((home / "sim.json").read_text()).get("interval_s", 1.0))
    con = connect(home / "warehouse.duckdb")
    try:
        load_spool(con, home / "spool")
        timings = run_attribution_days(con)  # exactly what the pipeline's attribution asset runs
        _reference_tables(con, home / "truth", interval_s)
        build_baselines(con)
        _eval_table(con)
        report = {m: _score(con, m, breakdown=m == "tokenwatt") for m in METHODS}
        act = con.execute(f"select median({_ape('active_energy_j', 'true_active_energy_j')}) * 100 from _eval "
                          "where true_active_energy_j > 0").fetchone()[0]
        report["tokenwatt"]["active_median_ape_pct"] = round(float(act), 3)
        best = min(BASELINES, key=lambda b: report[f"baseline_{b}"]["median_ape_pct"])
        best_med = report[f"baseline_{best}"]["median_ape_pct"]
        report["headline"] = {"best_baseline": best, "best_baseline_median_ape_pct": best_med,
                              "times_better": round(best_med / max(report["tokenwatt"]["median_ape_pct"], 1e-9), 2)}
        report.update(_fleet_figures(con, home / "truth"))
        report["attribution_s"] = round(timings.get("attribute_s", 0.0), 3)
    finally:
        con.close()
    return report


def evaluate_home(home: Path, intervals=INTERVALS_S, days: int = 1) -> dict:
    """Re-simulate the home's fleet at each sampling interval and score attribution on each."""
    from collectors.sim.simulate import simulate

    home = Path(home)
    meta_path = home / "sim.json"
    if not meta_path.exists():
        raise SystemExit(f"{meta_path} not found: evaluate needs a simulated home (tokenwatt simulate/demo)")
    meta = json.loads(meta_path.read_text())
    out = {"fleet": meta["fleet"], "seed": meta["seed"], "days": days, "by_interval_s": {}}
    scratch = Path(tempfile.mkdtemp(prefix="tokenwatt-eval-"))
    try:
        for s in intervals:
            d = scratch / f"i{s}"
            simulate(meta["fleet_source"], d, meta["start"], days, float(s), meta["seed"], progress=False)
            out["by_interval_s"][str(s)] = evaluate_dir(d, float(s))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    _store(home, out)
    return out


def _store(home: Path, report: dict) -> None:
    """Keep the scores in the home's warehouse (attribution.quality) for the dashboards."""
    db = home / "warehouse.duckdb"
    if not db.exists():
        return
    rows = []
    for s, rep in report["by_interval_s"].items():
        for method in METHODS:
            m = rep[method]
            rows.append((method, float(s), m["median_ape_pct"], m["p95_ape_pct"], rep["fleet_energy_error_pct"],
                         rep["conservation_residual_rel"], json.dumps(m["j_per_token_error_pct"]),
                         json.dumps({k: m[k] for k in m if k.startswith("by_")})))
    con = duckdb.connect(str(db))
    try:
        con.execute("create schema if not exists attribution")
        con.execute("""create or replace table attribution.quality (method varchar, interval_s double,
            median_ape_pct double, p95_ape_pct double, fleet_energy_error_pct double,
            conservation_residual_rel double, j_per_token_error_pct json, breakdown json)""")
        con.executemany("insert into attribution.quality values (?, ?, ?, ?, ?, ?, ?, ?)", rows)
    finally:
        con.close()


def format_report(report: dict) -> str:
    lines = [f"attribution vs ground truth: fleet '{report['fleet']}', {report['days']} day(s) per interval",
             f"{'interval':>9} {'method':<38}{'median APE %':>13}{'p95 APE %':>11}{'fleet E err %':>14}"
             f"{'conservation':>14}"]
    for s, rep in report["by_interval_s"].items():
        for method in METHODS:
            m = rep[method]
            lines.append(f"{s + ' s':>9} {method:<38}{m['median_ape_pct']:>13.2f}{m['p95_ape_pct']:>11.2f}"
                         f"{rep['fleet_energy_error_pct']:>14.3f}{rep['conservation_residual_rel']:>14.1e}")
        h = rep["headline"]
        lines.append(f"{'':>9} -> {h['times_better']:.1f}x better than the best honest baseline "
                     f"({h['best_baseline']}, {h['best_baseline_median_ape_pct']:.2f} %)")
    return "\n".join(lines)
