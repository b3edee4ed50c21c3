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
import pyarrow as pa
import pyarrow.parquet as pq

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


def _register(con: duckdb.DuckDBPyConnection, name: str, folder: Path) -> None:
    """Every Parquet file under ``folder`` as the relation ``name``: paths are listed in Python and
    read by pyarrow, never put into SQL text (where DuckDB would expand glob characters)."""
    files = sorted(p for p in folder.rglob("*.parquet") if not p.name.startswith("."))
    con.register(name, pa.concat_tables([pq.read_table(f) for f in files], promote_options="default"))


def calibrate(fleet: str = "default", hours: float = 24, seed: int = 42) -> dict:
    days = max(1, int(round(hours / 24)))
    scratch = Path(tempfile.mkdtemp(prefix="tokenwatt-calib-"))
    try:
        simulate(fleet, scratch, "2026-10-05", days, 5.0, seed, progress=False)
        con = duckdb.connect()
        for name, folder in (("_q", "spool/requests"), ("_t", "truth/requests"), ("rep", "spool/replicas"),
                             ("_dev", "spool/device_samples"), ("_idle", "truth/devices")):
            _register(con, name, scratch / folder)
        con.execute("create view r as select * from _q q join _t t using (request_id, replica_id, node)")
        sim = {m: v for m, v in con.execute("""
            select r.model, sum(true_energy_j) / sum(completion_tokens)
            from r join rep using (replica_id)
            where rep.chip = 'nvidia-h100-sxm' and r.task = 'chat'
            group by 1
        """).fetchall()}
        power = con.execute("""
            select median(power_w), quantile_cont(power_w, 0.05), quantile_cont(power_w, 0.95)
            from _dev where chip = 'nvidia-h100-sxm' and utilization_pct > 0
        """).fetchone()
        idle = con.execute("select chip, avg(true_idle_w) from _idle group by 1 order by 1").fetchall()
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


# --------------------------------------------------------------------------- measured pairs
# Every (model, chip) pair of collectors/catalog/measurements.yaml is simulated at each measured
# batch size with the serving kernel itself (a saturated queue, the batch capped at the measured
# average batch), and its GPU energy per output token and power per device are compared with the
# ML.ENERGY v3 configuration.
J_TOL_REL = 0.20
POWER_TOL_REL = 0.15


def catalog_perf() -> dict:
    """The catalog's perf rows as Perf objects, by (model, chip)."""
    import dataclasses

    from collectors.catalog import CATALOG
    from collectors.config import load_yaml_mapping
    from collectors.sim.fleet import Perf

    names = [f.name for f in dataclasses.fields(Perf)]
    rows = load_yaml_mapping(CATALOG / "models.yaml")["perf"]
    return {(r["model"], r["chip"]): Perf(**{k: r[k] for k in names}) for r in rows}


def simulate_config(perf, chip, batch: float, output_len: float, prompt_len: float, seed: int = 1) -> dict:
    """Steady-state GPU energy per output token and power per device of one replica at ``batch``."""
    import numpy as np

    from collectors.sim.serving import QUEUED, run_replica

    b = max(1, int(round(batch)))
    step_s = (perf.decode_t0_ms + perf.decode_t1_ms * b) / 1000.0
    life_s = output_len * step_s + prompt_len / perf.prefill_tokens_per_s
    warm_s, window_s = max(60.0, 2 * life_s), max(120.0, 6 * life_s)
    n = int(b * (warm_s + window_s) / life_s * 2) + 2 * b
    rng = np.random.default_rng(seed)
    sigma = 0.5
    completion = np.maximum(2.0, np.rint(output_len * np.exp(sigma * rng.standard_normal(n) - sigma ** 2 / 2)))
    prompt = np.full(n, float(prompt_len))
    arrival = np.zeros(n)
    state = np.zeros(n, np.int8)
    arrays = [np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan), np.zeros(n), np.zeros(n), np.zeros(n)]
    idle = chip.serving_idle_w
    tp = perf.tp

    def produced():  # output tokens so far: the first from prefill, the rest decoded (dec_left)
        return float(np.where(state == QUEUED, 0.0, completion - arrays[3]).sum())

    carry = 0.0
    tokens = []
    for t_start, seconds in ((0.0, warm_s), (warm_s, window_s)):
        ticks = int(seconds)
        out_a, out_b, out_n = np.zeros(ticks), np.zeros(ticks), np.zeros(ticks, np.int32)
        before = produced()
        carry, _ = run_replica(
            t_start, ticks, 1.0, arrival, prompt, completion, state, *arrays,
            perf.prefill_tokens_per_s, perf.decode_t0_ms / 1000, perf.decode_t1_ms / 1000, b,
            max(perf.prefill_power_w - idle, 0.0), perf.decode_power_a_w, perf.decode_power_c_w, idle,
            chip.rated_power_w, idle * tp, float(tp), 0.5, carry, out_a, out_b, out_n,
        )
        tokens.append(produced() - before)
        power = idle + out_a
        batch_mean = float(out_n.mean())
    if (state == QUEUED).sum() == 0:
        raise RuntimeError("calibration queue ran dry; more requests needed")
    energy_j = float(power.sum()) * tp
    return {"j_per_token": energy_j / tokens[-1], "power_w": float(power.mean()), "batch": batch_mean}


def calibrate_pairs(seed: int = 1) -> dict:
    """Simulated vs measured J/output token and power per device, for every measured pair."""
    from collectors.catalog import load_chips
    from collectors.sim.mlenergy import configs, load_measurements

    m = load_measurements()
    perf = catalog_perf()
    chips = load_chips()
    rows = []
    for pair in m["pairs"]:
        p = perf.get((pair.model, pair.chip))
        if p is None:
            raise KeyError(f"models.yaml has no perf row for {pair.model} on {pair.chip} (measurements.yaml)")
        for c in configs(pair):
            sim = simulate_config(p, chips[pair.chip], c["batch"], c["output_len"], m["prompt_tokens"][pair.task],
                                  seed)
            j_err = sim["j_per_token"] / c["j_per_token"] - 1.0
            p_err = sim["power_w"] / c["power_w"] - 1.0
            rows.append({
                "model": pair.model, "chip": pair.chip, "tp": p.tp, "task": pair.task,
                "max_num_seqs": c["max_num_seqs"], "measured_batch": c["batch"], "simulated_batch": sim["batch"],
                "measured_j_per_token": c["j_per_token"], "simulated_j_per_token": sim["j_per_token"],
                "j_error_rel": j_err, "measured_power_w": c["power_w"], "simulated_power_w": sim["power_w"],
                "power_error_rel": p_err,
                "inside": abs(j_err) <= J_TOL_REL and abs(p_err) <= POWER_TOL_REL,
            })
    return {"rows": rows, "all_inside": all(r["inside"] for r in rows), "text": pairs_text(rows)}


def pairs_text(rows: list[dict]) -> str:
    head = (f"{'model':<20}{'chip':<16}{'tp':>3}{'batch':>7}{'J/tok meas':>11}{'sim':>8}{'err':>7}"
            f"{'W/dev meas':>11}{'sim':>6}{'err':>7}  ok")
    out = [f"simulated vs ML.ENERGY v3 at the measured batch (tolerance: J/token {J_TOL_REL:.0%}, "
           f"power {POWER_TOL_REL:.0%})", head]
    for r in rows:
        out.append(f"{r['model']:<20}{r['chip']:<16}{r['tp']:>3}{r['measured_batch']:>7.0f}"
                   f"{r['measured_j_per_token']:>11.3f}{r['simulated_j_per_token']:>8.3f}{r['j_error_rel']:>+7.1%}"
                   f"{r['measured_power_w']:>11.0f}{r['simulated_power_w']:>6.0f}{r['power_error_rel']:>+7.1%}"
                   f"  {'yes' if r['inside'] else 'NO'}")
    worst_j = max(abs(r["j_error_rel"]) for r in rows)
    worst_p = max(abs(r["power_error_rel"]) for r in rows)
    out.append(f"{len(rows)} configurations, worst |error|: J/token {worst_j:.1%}, power {worst_p:.1%}")
    return "\n".join(out)
