"""Check the simulated fleet against measured chips (ML.ENERGY leaderboard, FACTS.md).

`tokenwatt calibrate` simulates a fleet (the default one unless told) for a day and prints, for
the chat workload, simulated GPU energy per output token of the 70B- and 8B-class models on H100
next to the ML.ENERGY measured ranges (v2 and v3, Llama-3.1-70B on 4 x H100 and Llama-3.1-8B on
1 x H100, chat), the power per H100 while serving against the v3 spread, and idle power against
the published idle figures.
"""
from __future__ import annotations

import csv
import shutil
import tempfile
from pathlib import Path

import duckdb

from collectors.sim.simulate import simulate
from collectors.sim.traffic import reference_dir

ML_ENERGY_MODELS = {
    "llama-70b": ("meta-llama/Llama-3.1-70B-Instruct", 4),
    "llama-8b": ("meta-llama/Llama-3.1-8B-Instruct", 1),
}


def measured_ranges() -> dict:
    """J per output token ranges on H100 for chat, from the ML.ENERGY v3 and v2 flat tables."""
    ref = reference_dir() / "ml_energy"
    out = {}
    for key, (model_id, n_gpu) in ML_ENERGY_MODELS.items():
        vals = []
        with open(ref / "v3_llm_configs_flat.csv") as fh:
            for r in csv.DictReader(fh):
                if r["task"] == "lm-arena-chat" and r["model_id"] == model_id and r["gpu_model"] == "H100" \
                        and int(r["num_gpus"]) == n_gpu:
                    vals.append(float(r["energy_per_token_joules"]))
        v2 = []
        v2path = ref / "v2_llm_configs_flat.csv"
        if v2path.exists():
            v2name = model_id.split("/")[1].replace("Llama-3.1", "Meta-Llama-3.1")
            with open(v2path) as fh:
                for r in csv.DictReader(fh):
                    if r["task"] == "chat" and r["model"].endswith(v2name) and "H100" in r["gpu"] \
                            and int(r["num_gpus_tp_x_pp"]) == n_gpu and r["derived_energy_per_output_token_J"]:
                        v2.append(float(r["derived_energy_per_output_token_J"]))
        out[key] = {"v3_min": min(vals), "v3_max": max(vals), "v3_configs": len(vals),
                    "v2_min": min(v2) if v2 else None, "v2_max": max(v2) if v2 else None,
                    "low": min(vals + v2), "high": max(vals + v2)}
    return out


def calibrate(fleet: str = "default", hours: float = 24, seed: int = 42) -> dict:
    days = max(1, int(round(hours / 24)))
    scratch = Path(tempfile.mkdtemp(prefix="tokenwatt-calib-"))
    try:
        simulate(fleet, scratch, "2026-10-05", days, 5.0, seed, progress=False)
        con = duckdb.connect()
        con.execute(f"""
            create view r as select * from read_parquet('{scratch}/spool/requests/*/*/*.parquet', hive_partitioning=false) q
                join read_parquet('{scratch}/truth/requests/*/*/*.parquet', hive_partitioning=false) t
                using (request_id, replica_id, node)
        """)
        con.execute(f"create view rep as select * from read_parquet('{scratch}/spool/replicas/*/*/*.parquet', hive_partitioning=false)")
        sim = {m: v for m, v in con.execute("""
            select r.model, sum(true_energy_j) / sum(completion_tokens)
            from r join rep using (replica_id)
            where rep.chip = 'nvidia-h100-sxm' and r.task = 'chat'
            group by 1
        """).fetchall()}
        power = con.execute(f"""
            select median(power_w), quantile_cont(power_w, 0.05), quantile_cont(power_w, 0.95)
            from read_parquet('{scratch}/spool/device_samples/*/*/*.parquet', hive_partitioning=false)
            where chip = 'nvidia-h100-sxm' and utilization_pct > 0
        """).fetchone()
        idle = con.execute(f"""
            select chip, avg(true_idle_w) from read_parquet('{scratch}/truth/devices/*/*.parquet') group by 1 order by 1
        """).fetchall()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    ranges = measured_ranges()
    rows = []
    all_inside = True
    for model in ("llama-70b", "llama-8b"):
        rg = ranges[model]
        v = sim.get(model)
        inside = v is not None and rg["low"] <= v <= rg["high"]
        all_inside &= inside
        rows.append({"model": model, "chip": "nvidia-h100-sxm", "simulated_j_per_output_token": v,
                     "measured_low": rg["low"], "measured_high": rg["high"], "inside": inside,
                     "source": f"ML.ENERGY v3 lm-arena-chat ({rg['v3_configs']} configs) + v2 chat"})
    power_ok = 231 <= power[0] <= 694
    all_inside &= power_ok
    text = ["simulated vs measured (chat workload, H100, GPU energy incl. idle share)",
            f"{'model':<11}{'simulated J/out tok':>21}{'ML.ENERGY range':>20}  inside"]
    for r in rows:
        text.append(f"{r['model']:<11}{r['simulated_j_per_output_token']:>21.3f}"
                    f"{r['measured_low']:>9.3f} - {r['measured_high']:<8.3f}  {'yes' if r['inside'] else 'NO'}")
    text.append(f"H100 power while serving: median {power[0]:.0f} W (p5 {power[1]:.0f}, p95 {power[2]:.0f}); "
                f"ML.ENERGY v3 H100 231-694 W, median 519 W (74 % of 700 W): {'inside' if power_ok else 'OUTSIDE'}")
    for chip, w in idle:
        text.append(f"idle with model loaded, {chip}: {w:.0f} W "
                    + ("(published: 75 W bare + 26-50 W CUDA context = 101-125 W; FACTS.md A1, A2)"
                       if chip == "nvidia-h100-sxm" else "(assumption, see catalog)"))
    return {"rows": rows, "h100_serving_power_w": {"median": power[0], "p5": power[1], "p95": power[2]},
            "idle_w": dict(idle), "all_inside": bool(all_inside), "text": "\n".join(text)}
