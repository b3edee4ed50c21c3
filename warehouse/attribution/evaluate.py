"""Score attribution against the simulator's ground truth, and the naive methods people use.

For each sampling interval, the home's fleet (same file, seed and start) is re-simulated for a
short span into a scratch directory, loaded and attributed exactly as `tokenwatt run` does, and
compared request by request with the truth. Two naive methods are scored on the same data:
``rated``: rated power x devices x duration; ``even``: each device-day's measured energy divided
evenly among the requests its replica served that day.
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

from warehouse.attribution.run import run_attribution_days
from warehouse.ingest.load import connect, load_spool


def _read_truth(root: Path, depth: int, columns: list[str]) -> pa.Table:
    """The simulator's truth files under ``root`` (``depth`` folders deep), read by pyarrow: the
    paths are listed here and never become SQL text or a DuckDB glob (a quote or ``*`` in the
    scratch directory is just a character)."""
    files = sorted(str(p) for p in root.glob("/".join(["*"] * depth) + ".parquet") if p.is_file())
    if not files:
        raise FileNotFoundError(f"{root}: no ground-truth files")
    return pa.concat_tables([pq.read_table(f, columns=columns) for f in files])


def _score(con: duckdb.DuckDBPyConnection, est_col: str) -> dict:
    r = con.execute(f"""
        select median(abs({est_col} / true_energy_j - 1)) * 100,
               quantile_cont(abs({est_col} / true_energy_j - 1), 0.95) * 100,
               count(*)
        from _eval where true_energy_j > 0
    """).fetchone()
    per = con.execute(f"""
        select chip, model,
               (sum({est_col}) / sum(total_tokens)) / (sum(true_energy_j) / sum(total_tokens)) - 1
        from _eval group by all order by all
    """).fetchall()
    return {
        "median_ape_pct": round(float(r[0]), 3),
        "p95_ape_pct": round(float(r[1]), 3),
        "requests": int(r[2]),
        "j_per_token_error_pct": {f"{c}/{m}": round(float(e) * 100, 3) for c, m, e in per},
    }


def evaluate_dir(home: Path) -> dict:
    """Attribute a simulated home (spool + truth) and score every method; returns the report."""
    home = Path(home)
    con = connect(home / "warehouse.duckdb")
    try:
        load_spool(con, home / "spool")
        timings = run_attribution_days(con)  # exactly what the pipeline's attribution asset runs
        con.execute("""
            create or replace temp table _attr as
            select request_id, sum(active_energy_j) as active_energy_j, sum(energy_j) as energy_j
            from attribution.request_energy group by 1
        """)
        truth = home / "truth"
        con.register("_truth_requests", _read_truth(truth / "requests", 3, ["request_id", "true_energy_j",
                                                                                 "true_active_energy_j"]))
        con.execute("create or replace temp table _truth as select * from _truth_requests")
        con.unregister("_truth_requests")
        con.execute("""
            create or replace temp table _rep as
            select replica_id, any_value(chip) as chip, any_value(model) as model,
                   len(string_split(any_value(device_ids), ',')) as n_dev
            from raw.replicas group by 1
        """)
        from warehouse.attribution.run import catalog_chips

        rated = {k: float(v["rated_power_w"]) for k, v in catalog_chips().items()}
        con.execute("create or replace temp table _rated (chip varchar, rated_w double)")
        con.executemany("insert into _rated values (?, ?)", list(rated.items()))
        con.execute("""
            create or replace temp table _even as
            with d as (
                select replica_id, date, sum(measured_energy_j) as e from attribution.device_day
                where replica_id is not null group by all
            ),
            n as (
                select replica_id, cast(coalesce(scheduled_ts, arrival_ts) as date) as date, count(*) as k
                from raw.requests group by all
            )
            select n.replica_id, n.date, d.e / n.k as even_j
            from n join d using (replica_id, date)
        """)
        con.execute("""
            create or replace temp table _eval as
            select r.request_id, p.chip, p.model, r.prompt_tokens + r.completion_tokens as total_tokens,
                   a.energy_j, a.active_energy_j, t.true_energy_j, t.true_active_energy_j,
                   rt.rated_w * p.n_dev * epoch_us(r.finish_ts - coalesce(r.scheduled_ts, r.arrival_ts)) / 1e6
                       as rated_j,
                   coalesce(ev.even_j, 0) as even_j
            from raw.requests r
            join _attr a using (request_id)
            join _truth t using (request_id)
            join _rep p using (replica_id)
            left join _rated rt on rt.chip = p.chip
            left join _even ev on ev.replica_id = r.replica_id
                and ev.date = cast(coalesce(r.scheduled_ts, r.arrival_ts) as date)
        """)
        report = {
            "tokenwatt": _score(con, "energy_j"),
            "naive_rated_power_x_duration": _score(con, "rated_j"),
            "naive_even_split": _score(con, "even_j"),
        }
        act = con.execute("""
            select median(abs(active_energy_j / true_active_energy_j - 1)) * 100 from _eval where true_active_energy_j > 0
        """).fetchone()[0]
        report["tokenwatt"]["active_median_ape_pct"] = round(float(act), 3)
        measured = con.execute("select sum(measured_energy_j) from attribution.device_day").fetchone()[0]
        true_dev = float(pc.sum(_read_truth(truth / "devices", 2, ["true_energy_j"])["true_energy_j"]).as_py())
        report["fleet_energy_error_pct"] = round((measured / true_dev - 1) * 100, 4)
        report["conservation_residual_rel"] = float(con.execute("""
            select max(greatest(abs(attributed_active_j + shared_idle_j + unused_j - measured_energy_j),
                                abs(attributed_active_j - request_side_active_j),
                                abs(shared_idle_j - request_side_idle_j)) / greatest(measured_energy_j, 1))
            from attribution.device_day
        """).fetchone()[0])
        report["attribution_s"] = round(timings.get("attribute_s", timings.get("compute_s", 0.0)), 3)
    finally:
        con.close()
    return report


def evaluate_home(home: Path, intervals=(1, 5, 15, 30), days: int = 1) -> dict:
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
            out["by_interval_s"][str(s)] = evaluate_dir(d)
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
        for method in ("tokenwatt", "naive_rated_power_x_duration", "naive_even_split"):
            m = rep[method]
            rows.append((method, float(s), m["median_ape_pct"], m["p95_ape_pct"], rep["fleet_energy_error_pct"],
                         rep["conservation_residual_rel"], json.dumps(m["j_per_token_error_pct"])))
    con = duckdb.connect(str(db))
    try:
        con.execute("create schema if not exists attribution")
        con.execute("""create or replace table attribution.quality (method varchar, interval_s double,
            median_ape_pct double, p95_ape_pct double, fleet_energy_error_pct double,
            conservation_residual_rel double, j_per_token_error_pct json)""")
        con.executemany("insert into attribution.quality values (?, ?, ?, ?, ?, ?, ?)", rows)
    finally:
        con.close()


def format_report(report: dict) -> str:
    lines = [f"attribution vs ground truth: fleet '{report['fleet']}', {report['days']} day(s) per interval",
             f"{'interval':>9} {'method':<30}{'median APE %':>13}{'p95 APE %':>11}{'fleet E err %':>14}{'conservation':>14}"]
    for s, rep in report["by_interval_s"].items():
        for method in ("tokenwatt", "naive_rated_power_x_duration", "naive_even_split"):
            m = rep[method]
            lines.append(f"{s + ' s':>9} {method:<30}{m['median_ape_pct']:>13.2f}{m['p95_ape_pct']:>11.2f}"
                         f"{rep['fleet_energy_error_pct']:>14.3f}{rep['conservation_residual_rel']:>14.1e}")
    return "\n".join(lines)
