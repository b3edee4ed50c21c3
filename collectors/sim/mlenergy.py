"""ML.ENERGY v3 measurements -> serving rows of the model catalog (the fit behind models.yaml).

``collectors/catalog/measurements.yaml`` names, for each ``(model, chip)`` pair, the v3
configurations (model id, GPU, GPU count, task) that measure it. :func:`fit_pair` fits the
serving model of ``collectors/sim/serving.py`` to them:

* decode step ``t0 + t1 * b`` (ms) to the median inter-token latency against the average batch,
* per-device decode power ``a + c * ln b`` (W) to ``avg_power_watts / num_gpus``,
* prefill: the mean time of a decode iteration (``batch / throughput``) is the step plus the
  prefill of the requests that finished in it, ``g * batch / output_len``; t0, t1 and the prefill
  time per request g are fitted to the latencies and these iteration times together, and an
  assumed prompt length (measurements.yaml ``prompt_tokens``) over g is the prefill rate,

each least squares in relative error over the configurations up to the pair's ``max_batch``.
Rows for chips with no measurement are the H100 fit scaled (``scaling``), marked as assumptions.
``tokenwatt calibrate --fit`` prints the rows; models.yaml carries them as printed.
"""
from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from collectors.catalog import CATALOG, load_chips
from collectors.config import ConfigError, fields, load_yaml_mapping, number, string

MEASUREMENTS = CATALOG / "measurements.yaml"
V3_FILE = Path("ml_energy") / "v3_llm_configs_flat.csv"
_PAIR_KEYS = ("model", "chip", "model_id", "gpu", "num_gpus", "task", "max_batch", "fit")


class MeasurementError(ConfigError):
    """measurements.yaml or the v3 table cannot be used; the message names file and field."""


@dataclass(frozen=True)
class Pair:
    model: str
    chip: str
    model_id: str
    gpu: str
    num_gpus: int
    task: str
    max_batch: int
    fit: bool


def v3_path() -> Path:
    """The v3 flat table: $TOKENWATT_REFERENCE, the vendored copy, or ../shared/reference."""
    here = Path(__file__).resolve()
    cands = [Path(os.environ["TOKENWATT_REFERENCE"])] if os.environ.get("TOKENWATT_REFERENCE") else []
    cands += [here.parents[1] / "reference", here.parents[3] / "shared" / "reference"]
    for c in cands:
        if (c / V3_FILE).exists():
            return c / V3_FILE
    raise MeasurementError(f"{V3_FILE}: not found under {', '.join(map(str, cands))}")


@lru_cache(maxsize=1)
def load_measurements() -> dict:
    src = MEASUREMENTS
    raw = fields(src, "", load_yaml_mapping(src, MeasurementError),
                 ("pairs", "prompt_tokens", "prefill_floor_s", "prefill_cap_tokens_per_s", "scaling", "scaled_rows"),
                 required=("pairs", "prompt_tokens"), error=MeasurementError)
    pairs = []
    for i, p in enumerate(raw["pairs"]):
        w = f"pairs[{i}]"
        fields(src, w, p, _PAIR_KEYS, required=_PAIR_KEYS, error=MeasurementError)
        pairs.append(Pair(
            model=string(src, f"{w}.model", p["model"], error=MeasurementError),
            chip=string(src, f"{w}.chip", p["chip"], error=MeasurementError),
            model_id=str(p["model_id"]), gpu=str(p["gpu"]), task=str(p["task"]),
            num_gpus=int(number(src, f"{w}.num_gpus", p["num_gpus"], lo=1, hi=64, error=MeasurementError)),
            max_batch=int(number(src, f"{w}.max_batch", p["max_batch"], lo=1, error=MeasurementError)),
            fit=bool(p["fit"]),
        ))
    prompts = {}
    for task, v in raw["prompt_tokens"].items():
        fields(src, f"prompt_tokens.{task}", v, ("tokens", "source"), required=("tokens", "source"),
               error=MeasurementError)
        prompts[task] = number(src, f"prompt_tokens.{task}.tokens", v["tokens"], lo=1, error=MeasurementError)
    for i, p in enumerate(pairs):
        if p.task not in prompts:
            raise MeasurementError(f"{src}: field 'pairs[{i}].task' is '{p.task}', not in prompt_tokens")
    return {"pairs": pairs, "prompt_tokens": prompts,
            "prefill_floor_s": float(raw.get("prefill_floor_s", 0.001)),
            "prefill_cap": float(raw.get("prefill_cap_tokens_per_s", 100000)),
            "scaling": raw.get("scaling") or {}, "scaled_rows": raw.get("scaled_rows") or {}}


@lru_cache(maxsize=1)
def v3_rows() -> tuple[dict, ...]:
    with open(v3_path(), newline="") as fh:
        return tuple(csv.DictReader(fh))


def configs(pair: Pair) -> list[dict]:
    """The pair's v3 configurations with max_num_seqs <= max_batch, by batch size."""
    out = []
    for r in v3_rows():
        if (r["model_id"], r["gpu_model"], int(r["num_gpus"]), r["task"]) != \
                (pair.model_id, pair.gpu, pair.num_gpus, pair.task) or int(r["max_num_seqs"]) > pair.max_batch:
            continue
        n = int(r["num_gpus"])
        out.append({
            "max_num_seqs": int(r["max_num_seqs"]), "batch": float(r["avg_batch_size"]),
            "itl_ms": float(r["median_itl_ms"]), "power_w": float(r["avg_power_watts"]) / n,
            "j_per_token": float(r["energy_per_token_joules"]), "output_len": float(r["avg_output_len"]),
            "throughput": float(r["output_throughput_tokens_per_sec"]), "num_gpus": n,
        })
    if len(out) < 2:
        raise MeasurementError(f"{MEASUREMENTS}: pair {pair.model}/{pair.chip} ({pair.model_id}, {pair.gpu} x "
                               f"{pair.num_gpus}, {pair.task}) has {len(out)} v3 configurations; 2 needed to fit")
    return sorted(out, key=lambda c: c["batch"])


def _rel_lstsq(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(p, q) minimising sum(((p + q x) - y) / y)^2 with q >= 0."""
    a = np.column_stack([1.0 / y, x / y])
    (p, q), *_ = np.linalg.lstsq(a, np.ones_like(y), rcond=None)
    if q < 0:
        q, p = 0.0, float(len(y) / np.sum(1.0 / y))
    return float(p), float(q)


def _fit_times(cs: list[dict]) -> tuple[float, float, float]:
    """(t0 ms, t1 ms, prefill s per request) matching both the median inter-token latency
    (t0 + t1 b) and the mean time per decode iteration b / throughput (t0 + t1 b + g b / output_len),
    least squares in relative error over both; g >= 0."""
    b = np.array([c["batch"] for c in cs])
    itl = np.array([c["itl_ms"] for c in cs])
    s_eff = np.array([1000.0 * c["batch"] / c["throughput"] for c in cs])
    x = 1000.0 * b / np.array([c["output_len"] for c in cs])
    a = np.vstack([np.column_stack([1 / itl, b / itl, 0 * b]), np.column_stack([1 / s_eff, b / s_eff, x / s_eff])])
    sol, *_ = np.linalg.lstsq(a, np.ones(2 * len(b)), rcond=None)
    if sol[2] < 0:
        sol, *_ = np.linalg.lstsq(a[:, :2], np.ones(2 * len(b)), rcond=None)
        sol = [sol[0], sol[1], 0.0]
    t0, t1, g = (float(v) for v in sol)
    if t1 < 0:
        t1 = 0.0
    return t0, t1, g


def fit_pair(pair: Pair) -> dict:
    """A models.yaml perf row fitted to the pair's measurements."""
    m = load_measurements()
    cs = configs(pair)
    b = np.array([c["batch"] for c in cs])
    t0, t1, gap_s = _fit_times(cs)
    a, c_ = _rel_lstsq(np.log(b), np.array([c["power_w"] for c in cs]))
    prompt = m["prompt_tokens"][pair.task]
    capped = gap_s < m["prefill_floor_s"] or prompt / gap_s > m["prefill_cap"]
    prefill = m["prefill_cap"] if capped else prompt / gap_s
    rated = load_chips()[pair.chip].rated_power_w
    top = max(c["max_num_seqs"] for c in cs)
    return {
        "model": pair.model, "chip": pair.chip, "tp": pair.num_gpus, "max_batch": top,
        "prefill_tokens_per_s": float(round(prefill, -2)),
        "prefill_power_w": float(round(min(rated, a + c_ * math.log(top)))),
        "decode_t0_ms": round(max(t0, 0.01), 2), "decode_t1_ms": round(t1, 4),
        "decode_power_a_w": round(a, 1), "decode_power_c_w": round(c_, 1),
        "source": (f"fit (tokenwatt calibrate --fit) to ML.ENERGY v3 {pair.task} {pair.model_id} "
                   f"{pair.num_gpus}x{pair.gpu}, {len(cs)} configs batch {cs[0]['max_num_seqs']}-{top}: "
                   f"median ITL and batch/throughput, avg power/GPU; "
                   + ("prefill too short to measure: rate is the cap (assumption)" if capped else
                      f"prefill rate with an assumed {prompt:.0f}-token prompt")),
    }


def scaled_row(row: dict, chip: str, scale: dict) -> dict:
    """An H100-fitted row carried to an unmeasured chip by the scaling assumption."""
    t, p = float(scale["time"]), float(scale["power"])
    rated = load_chips()[chip].rated_power_w
    return {
        **row, "chip": chip,
        "prefill_tokens_per_s": float(round(row["prefill_tokens_per_s"] / t, -2)),
        "prefill_power_w": float(round(min(rated, row["prefill_power_w"] * p))),
        "decode_t0_ms": round(row["decode_t0_ms"] * t, 2), "decode_t1_ms": round(row["decode_t1_ms"] * t, 4),
        "decode_power_a_w": round(row["decode_power_a_w"] * p, 1),
        "decode_power_c_w": round(row["decode_power_c_w"] * p, 1),
        "source": f"{scale['source']}; from the {row['chip']} row ({row['source'].split(':')[0]})",
    }


def fitted_rows() -> list[dict]:
    """Every perf row the fit produces: measured pairs (fit: true), then the scaled ones."""
    m = load_measurements()
    rows = [fit_pair(p) for p in m["pairs"] if p.fit]
    by_key = {(r["model"], r["chip"]): r for r in rows}
    for model, chips in m["scaled_rows"].items():
        for chip in chips:
            scale = m["scaling"][chip]
            base = by_key.get((model, scale["from"]))
            if base is None:
                raise MeasurementError(f"{MEASUREMENTS}: field 'scaled_rows.{model}': no fitted row on {scale['from']}")
            rows.append(scaled_row(base, chip, scale))
    return rows


def rows_yaml(rows: list[dict]) -> str:
    """The rows in models.yaml's flow style, one per entry."""
    keys = ("model", "chip", "tp", "max_batch", "prefill_tokens_per_s", "prefill_power_w", "decode_t0_ms",
            "decode_t1_ms", "decode_power_a_w", "decode_power_c_w")
    out = []
    for r in rows:
        body = ", ".join(f"{k}: {r[k]}" for k in keys)
        src = r["source"].replace('"', "'")
        out.append(f"  - {{{body},\n     source: \"{src}\"}}")
    return "\n".join(out)
