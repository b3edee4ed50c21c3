"""`tokenwatt bench`: attribution speed and memory at fleet scale.

For each size N (GPU-days), a fleet of N/4 H100s, each serving an 8B-class replica at about
2.8 requests/s (15 M requests per 64 GPU-days), is simulated for 4 days at the given sampling
interval. Then, each in a fresh subprocess so peak memory is its own:

* ``simulate``: the simulator writing the spool (time, peak RSS);
* ``load``: the spool into DuckDB ``raw`` (manifest, validation, quarantine);
* ``attribution``: the pipeline's attribution step (``run_attribution_days``: read from DuckDB,
  attribute, write back), with its compute timed separately ("attribution alone"), and the peak
  RSS of the whole step;
* ``dbt``: the price and footprint reference tables, then ``dbt build --full-refresh`` (every model and test)
  over the loaded and attributed warehouse;
* ``forecast``: the loss forecast and its backtests (``run_forecast``);
* ``site``: the static site from the marts (``build_site``);
* ``duckdb_pass``: one DuckDB pass that reads the same Parquet files (sums over every column the
  attribution uses), the yardstick for the ratios of load and attribution to it.

``stages=("load",)`` (``tokenwatt bench --stages load``) runs only the simulator, the load and the
one DuckDB pass: the loader's own benchmark, without attribution, dbt, forecast and site.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import yaml

DAYS = 4
RATE_PER_GPU = 2.8


def bench_fleet(n_gpus: int) -> dict:
    nodes, replicas = [], []
    per_node = 8
    for i in range((n_gpus + per_node - 1) // per_node):
        k = min(per_node, n_gpus - i * per_node)
        nodes.append({"name": f"h100-{i}", "chip": "nvidia-h100-sxm", "devices": k, "site": "us-east"})
        for d in range(k):
            replicas.append({"node": f"h100-{i}", "model": "llama-8b", "devices": [d]})
    return {
        "name": f"bench-{n_gpus}gpu", "nodes": nodes, "replicas": replicas,
        "traffic": {"mode": "synthetic", "requests_per_s": {"llama-8b": RATE_PER_GPU * n_gpus},
                    "diurnal_amplitude": 0.3, "peak_hour_utc": 15, "weekend_factor": 1.0, "growth_per_week": 0.0,
                    "tasks": {"chat": 0.5, "translate": 0.1, "summarize": 0.1, "code-generate": 0.1,
                              "code-optimize": 0.1, "code-fix": 0.1},
                    "languages": {"en": 0.6, "fr": 0.2, "de": 0.2}, "tiers": {"free": 0.5, "api": 0.5},
                    "error_rate": 0.0},
    }


def _sub(code: str) -> dict:
    """Run ``code`` in a fresh interpreter; it prints one JSON line; peak RSS is added."""
    wrapper = textwrap.dedent("""
        import json, resource, time, sys
        sys.path.insert(0, %r)
        t0 = time.perf_counter()
        out = {}
        %s
        out["wall_s"] = round(time.perf_counter() - t0, 3)
        out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
        print("\\nBENCH " + json.dumps(out))  # own line: DuckDB's progress bar may leave one open
    """) % (str(Path(__file__).resolve().parents[1]), textwrap.indent(textwrap.dedent(code), "").replace("\n", "\n"))
    proc = subprocess.run([sys.executable, "-c", wrapper], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-3000:])
    line = [l for l in proc.stdout.splitlines() if l.startswith("BENCH ")][-1]
    return json.loads(line[6:])


STAGES = ("load", "attribution", "dbt", "forecast", "site")


def run_size(gpu_days: int, interval_s: float, workdir: Path, seed: int, stages=STAGES) -> dict:
    n_gpus = max(1, gpu_days // DAYS)
    home = workdir / f"gd{gpu_days}"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    fleet_file = home / "fleet.yaml"
    fleet_file.write_text(yaml.safe_dump(bench_fleet(n_gpus)))
    sim = _sub(f"""
from collectors.sim.simulate import simulate
m = simulate({str(fleet_file)!r}, {str(home)!r}, "2026-10-05", {DAYS}, {interval_s}, {seed}, progress=False)
out.update(requests=m["requests"], samples=m["samples"])
""")
    load = _sub(f"""
from warehouse.ingest.load import connect, load_spool
con = connect({str(home / 'warehouse.duckdb')!r})
r = load_spool(con, {str(home / 'spool')!r})
con.close()
out.update(files=r.files_loaded, batches=r.batches)
""")
    if tuple(stages) == ("load",):
        return _load_figures(gpu_days, n_gpus, interval_s, sim, load, _one_pass(home))
    # the pipeline's own attribution step (the Dagster asset runs exactly this), on the loaded warehouse
    attr = _sub(f"""
import duckdb
from warehouse.attribution.run import run_attribution_days
con = duckdb.connect({str(home / 'warehouse.duckdb')!r})
r = run_attribution_days(con)
con.close()
out.update(read_s=round(r["read_s"], 3), attribute_s=round(r["attribute_s"], 3), write_s=round(r["write_s"], 3),
           requests=r["request_day_rows"], device_days=r["device_days"])
""")
    dbt = _sub(f"""
import duckdb
from pipelines.dbt import NOT_IN_RUNS
from pipelines.dbt_project import run_dbt
from pathlib import Path
from warehouse.catalog_curve import home_fleet, write_catalog_curve
from warehouse.footprint.factors import load_footprint
from warehouse.footprint.ref import write_footprint_ref
from warehouse.money.prices import load_prices, write_ref_tables
con = duckdb.connect({str(home / 'warehouse.duckdb')!r})
write_ref_tables(con, load_prices(None), {{}})
write_footprint_ref(con, load_footprint(None))
write_catalog_curve(con, home_fleet(Path({str(home / 'sim.json')!r})))
con.close()
proc = run_dbt({str(home)!r}, "build", "--full-refresh", *NOT_IN_RUNS, check=False, capture_output=True, text=True)
if proc.returncode:
    raise SystemExit(proc.stdout[-3000:])
""")
    forecast = _sub(f"""
import duckdb
from warehouse.money.forecast import run_forecast
con = duckdb.connect({str(home / 'warehouse.duckdb')!r})
run_forecast(con)
con.close()
""")
    site = _sub(f"""
from dashboards.site import build_site
r = build_site(__import__("pathlib").Path({str(home / 'warehouse.duckdb')!r}), __import__("pathlib").Path({str(home / 'site')!r}))
out.update(pages=r["pages"])
""")
    return _figures(gpu_days, n_gpus, interval_s, sim, load, attr, dbt, forecast, site, _one_pass(home))


def _one_pass(home: Path) -> dict:
    return _sub(f"""
import duckdb
con = duckdb.connect()
spool = {str(home / 'spool')!r}
t1 = time.perf_counter()
a = con.execute(f"select count(*), sum(epoch_us(ts)), sum(power_w), sum(energy_counter_j) from read_parquet('{{spool}}/device_samples/*/*/*.parquet', hive_partitioning=false)").fetchone()
b = con.execute(f"select count(*), sum(epoch_us(scheduled_ts)), sum(epoch_us(first_token_ts)), sum(epoch_us(finish_ts)), sum(prompt_tokens), sum(completion_tokens) from read_parquet('{{spool}}/requests/*/*/*.parquet', hive_partitioning=false)").fetchone()
out.update(pass_s=round(time.perf_counter() - t1, 3), samples=a[0], requests=b[0])
""")


def _load_figures(gpu_days: int, n_gpus: int, interval_s: float, sim: dict, load: dict, one_pass: dict) -> dict:
    """One size's row of a load-only run."""
    rows = sim["requests"] + sim["samples"]
    return {
        "gpu_days": gpu_days, "gpus": n_gpus, "days": DAYS, "interval_s": interval_s,
        "samples": sim["samples"], "requests": sim["requests"],
        "simulate_s": sim["wall_s"], "load_s": load["wall_s"], "load_peak_rss_mb": load["peak_rss_mb"],
        "load_batches": load.get("batches"),
        "load_rows_per_s": round(rows / load["wall_s"]) if load["wall_s"] else None,
        "load_us_per_row": round(load["wall_s"] / rows * 1e6, 3) if rows else None,
        "duckdb_one_pass_s": one_pass["pass_s"],
        "load_over_one_pass": round(load["wall_s"] / one_pass["pass_s"], 2) if one_pass["pass_s"] else None,
    }

def _figures(gpu_days: int, n_gpus: int, interval_s: float, sim: dict, load: dict, attr: dict, dbt: dict,
             forecast: dict, site: dict, one_pass: dict) -> dict:
    """One size's row: each stage's time and memory, rates and the ratios to one DuckDB pass."""
    rows = sim["requests"] + sim["samples"]
    return {
        "gpu_days": gpu_days, "gpus": n_gpus, "days": DAYS, "interval_s": interval_s,
        "samples": sim["samples"], "requests": sim["requests"],
        "simulate_s": sim["wall_s"], "simulate_peak_rss_mb": sim["peak_rss_mb"],
        "load_s": load["wall_s"], "load_peak_rss_mb": load["peak_rss_mb"],
        "attribution_read_s": attr["read_s"], "attribution_alone_s": attr["attribute_s"],
        "attribution_step_peak_rss_mb": attr["peak_rss_mb"],
        "attribution_rows_per_s": round(rows / attr["attribute_s"]) if attr["attribute_s"] else None,
        "duckdb_one_pass_s": one_pass["pass_s"],
        "attribution_over_one_pass": round(attr["attribute_s"] / one_pass["pass_s"], 2) if one_pass["pass_s"] else None,
        "load_rows_per_s": round(rows / load["wall_s"]) if load["wall_s"] else None,
        "load_us_per_row": round(load["wall_s"] / rows * 1e6, 3) if rows else None,
        "load_over_one_pass": round(load["wall_s"] / one_pass["pass_s"], 2) if one_pass["pass_s"] else None,
        "dbt_s": dbt["wall_s"], "dbt_peak_rss_mb": dbt["peak_rss_mb"],
        "forecast_s": forecast["wall_s"], "site_s": site["wall_s"], "site_peak_rss_mb": site["peak_rss_mb"],
        "whole_run_s": round(load["wall_s"] + attr["wall_s"] + dbt["wall_s"] + forecast["wall_s"] + site["wall_s"], 3),
    }


def bench(gpu_days: list[int], interval_s: float, workdir: str, seed: int, json_out: bool = False,
          stages=STAGES) -> list[dict]:
    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    results = []
    header = (f"{'GPU-days':>8}{'samples':>11}{'requests':>12}{'simulate s':>11}{'load s':>8}{'load rows/s':>12}"
              f"{'load/pass':>10}{'read s':>8}{'attrib s':>9}{'attr MB':>8}{'attr/pass':>10}{'dbt s':>7}"
              f"{'forecast s':>11}{'site s':>7}{'1 pass s':>9}")
    load_only = tuple(stages) == ("load",)
    if load_only:
        header = (f"{'GPU-days':>8}{'samples':>11}{'requests':>12}{'simulate s':>11}{'load s':>8}"
                  f"{'load rows/s':>12}{'load MB':>8}{'batches':>8}{'load/pass':>10}{'1 pass s':>9}")
    if not json_out:
        print(header, flush=True)
    for n in gpu_days:
        r = run_size(n, interval_s, work, seed, stages)
        results.append(r)
        if not json_out and load_only:
            print(f"{r['gpu_days']:>8}{r['samples']:>11,}{r['requests']:>12,}{r['simulate_s']:>11.1f}"
                  f"{r['load_s']:>8.1f}{r['load_rows_per_s']:>12,}{r['load_peak_rss_mb']:>8.0f}{r['load_batches']:>8}"
                  f"{r['load_over_one_pass']:>10.1f}{r['duckdb_one_pass_s']:>9.2f}", flush=True)
        elif not json_out:
            print(f"{r['gpu_days']:>8}{r['samples']:>11,}{r['requests']:>12,}{r['simulate_s']:>11.1f}"
                  f"{r['load_s']:>8.1f}{r['load_rows_per_s']:>12,}{r['load_over_one_pass']:>10.1f}"
                  f"{r['attribution_read_s']:>8.1f}{r['attribution_alone_s']:>9.2f}"
                  f"{r['attribution_step_peak_rss_mb']:>8.0f}{r['attribution_over_one_pass']:>10.1f}"
                  f"{r['dbt_s']:>7.1f}{r['forecast_s']:>11.1f}{r['site_s']:>7.1f}{r['duckdb_one_pass_s']:>9.2f}",
                  flush=True)
        shutil.rmtree(work / f"gd{n}" / "spool", ignore_errors=True)
    if not json_out and len(results) > 1:
        per_row = [r["load_us_per_row"] for r in results]
        print(f"load time per row: {min(per_row):.3f}-{max(per_row):.3f} us "
              f"(spread {100 * (max(per_row) / min(per_row) - 1):.0f} % from {results[0]['gpu_days']} "
              f"to {results[-1]['gpu_days']} GPU-days)", flush=True)
    if json_out:
        print(json.dumps(results, indent=2))
    return results
