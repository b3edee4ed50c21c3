"""Request arrivals and shapes: synthetic daily/weekly cycles with growth, or Azure trace replay."""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from collectors.sim.fleet_types import Fleet, Replica

DAY_S = 86400
REFERENCE = Path(__file__).resolve().parents[3] / "shared" / "reference"
AZURE_TRACES = {
    "code": "azure_llm_traces/AzureLLMInferenceTrace_code.csv",
    "conv": "azure_llm_traces/AzureLLMInferenceTrace_conv.csv",
}


def reference_dir() -> Path:
    import os

    env = os.environ.get("TOKENWATT_REFERENCE")
    if env:
        return Path(env)
    vendored = Path(__file__).resolve().parents[1] / "reference"
    for cand in (vendored, REFERENCE, Path.cwd().parent / "shared" / "reference"):
        if (cand / "azure_llm_traces").exists():
            return cand
    return vendored


@dataclass
class Arrivals:
    """Requests for one replica and one day, sorted by arrival (epoch seconds)."""

    arrival: np.ndarray
    prompt: np.ndarray
    completion: np.ndarray
    task: np.ndarray  # int codes into fleet task names
    language: np.ndarray
    tier: np.ndarray
    failed: np.ndarray  # bool


def rate_profile(fleet: Fleet, t: np.ndarray, t0: float) -> np.ndarray:
    """Multiplier of the base rate at epoch seconds ``t``: diurnal x weekly x growth."""
    tr = fleet.traffic
    hour = (t % DAY_S) / 3600.0
    diurnal = 1.0 + tr.diurnal_amplitude * np.cos(2 * math.pi * (hour - tr.peak_hour_utc) / 24.0)
    weekday = ((t // DAY_S).astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday -> Monday = 0
    weekly = np.where(weekday >= 5, tr.weekend_factor, 1.0)
    weeks = (t - t0) / (7 * DAY_S)
    growth = (1.0 + tr.growth_per_week) ** weeks
    return diurnal * weekly * growth


@lru_cache(maxsize=4)
def load_azure_trace(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(offset seconds from the first request, context tokens, generated tokens) of an Azure trace."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    path = reference_dir() / AZURE_TRACES[name]
    if not path.exists():
        raise FileNotFoundError(
            f"Azure trace not found at {path}; set TOKENWATT_REFERENCE to the shared/reference folder"
        )
    tbl = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(
        column_types={"TIMESTAMP": pa.timestamp("ns"), "ContextTokens": pa.int64(), "GeneratedTokens": pa.int64()}))
    t = tbl["TIMESTAMP"].cast(pa.int64()).to_numpy().astype(np.float64) / 1e9
    order = np.argsort(t, kind="stable")
    t = t[order] - t[order][0]
    ctx = tbl["ContextTokens"].to_numpy()[order].astype(np.float64)
    gen = tbl["GeneratedTokens"].to_numpy()[order].astype(np.float64)
    return t, ctx, gen


def task_mix(fleet: Fleet, model: str) -> np.ndarray:
    """Task probabilities of one model's requests, in fleet.tasks order: the fleet's task mix
    times the model's share of each routed task (traffic.routes); unrouted tasks go to every model."""
    tr = fleet.traffic
    w = np.array([tr.tasks.get(t, 0.0) * (tr.routes[t].get(model, 0.0) if t in tr.routes else 1.0)
                  for t in fleet.tasks])
    if w.sum() <= 0:
        raise ValueError(f"{fleet.source}: traffic.routes send no task to {model}, which has requests_per_s")
    return w / w.sum()


def _lognormal(rng: np.random.Generator, median: float, sigma: float, n: int) -> np.ndarray:
    return median * np.exp(sigma * rng.standard_normal(n))


def generate_day(
    fleet: Fleet, replica_index: int, replica: Replica, day_start: float, sim_start: float, seed: int, day_index: int
) -> Arrivals:
    """Arrivals of one replica for one UTC day, deterministic for (seed, day, replica)."""
    rng = np.random.default_rng([seed, day_index, replica_index, 1])
    tr = fleet.traffic
    share_total = sum(r.share for r in fleet.replicas if r.model == replica.model) or 1.0
    base = tr.requests_per_s.get(replica.model, 0.0) * replica.share / share_total
    task_names = list(fleet.tasks.keys())
    lim = fleet.token_limits
    task_p = task_mix(fleet, replica.model)
    z = None
    if tr.mode == "replay":
        arrival, prompt, completion = _replay_day(fleet, rng, base, day_start, sim_start)
        n = arrival.shape[0]
        task = rng.choice(len(task_names), size=n, p=task_p).astype(np.int16)
    else:
        secs = day_start + np.arange(DAY_S, dtype=np.float64)
        lam = base * rate_profile(fleet, secs + 0.5, sim_start)
        counts = rng.poisson(lam)
        n = int(counts.sum())
        arrival = np.repeat(secs, counts) + rng.random(n)
        arrival.sort()
        task = rng.choice(len(task_names), size=n, p=task_p).astype(np.int16)
        pm = np.array([fleet.tasks[t]["prompt_median"] for t in task_names])[task]
        ps = np.array([fleet.tasks[t]["prompt_sigma"] for t in task_names])[task]
        cm = np.array([fleet.tasks[t]["completion_median"] for t in task_names])[task]
        cs = np.array([fleet.tasks[t]["completion_sigma"] for t in task_names])[task]
        prompt = pm * np.exp(ps * rng.standard_normal(n))
        z = rng.standard_normal(n)
        completion = cm * np.exp(cs * z)
    lang_names = list(tr.languages.keys())
    lang_p = np.array(list(tr.languages.values()))
    language = rng.choice(len(lang_names), size=n, p=lang_p).astype(np.int16)
    tier_names = list(tr.tiers.keys())
    tier = rng.choice(len(tier_names), size=n, p=np.array(list(tr.tiers.values()))).astype(np.int16)
    if tr.mode != "replay":
        factor = np.array([fleet.language_token_factor.get(l, 1.0) for l in lang_names])[language]
        prompt = prompt * factor
        completion = completion * factor
    prompt = np.clip(np.rint(prompt), lim["prompt_min"], lim["prompt_max"])
    completion = np.clip(np.rint(completion), lim["completion_min"], lim["completion_max"])
    out = fleet.models[replica.model].output_tokens
    if out is not None:  # the model's own output lengths (a reasoning model), whatever the task
        z = rng.standard_normal(n) if z is None else z
        median = out["mean"] * math.exp(-out["sigma"] ** 2 / 2)
        completion = np.clip(np.rint(median * np.exp(out["sigma"] * z)), lim["completion_min"], out["max"])
    failed = rng.random(n) < tr.error_rate
    return Arrivals(arrival, prompt, completion, task, language, tier, failed)


def _replay_day(fleet: Fleet, rng: np.random.Generator, base: float, day_start: float, sim_start: float):
    """Tile an Azure trace over the day, rescaled in time and rate.

    ``time_scale`` stretches the trace's inter-arrival times; ``rate_scale`` keeps each request
    with that probability (or repeats it) so the replica sees ``rate_scale`` x the trace rate.
    """
    rp = fleet.traffic.replay
    t, ctx, gen = load_azure_trace(rp["trace"])
    time_scale = float(rp.get("time_scale", 1.0))
    rate_scale = float(rp.get("rate_scale", 1.0))
    span = (t[-1] + (t[-1] / max(len(t) - 1, 1))) * time_scale
    offsets, idx = [], []
    start = (day_start - sim_start) % span
    pos = -start
    while pos < DAY_S:
        tt = t * time_scale + pos
        keep = (tt >= 0) & (tt < DAY_S)
        offsets.append(tt[keep])
        idx.append(np.nonzero(keep)[0])
        pos += span
    off = np.concatenate(offsets)
    ix = np.concatenate(idx)
    whole = int(math.floor(rate_scale))
    frac = rate_scale - whole
    reps = np.full(off.shape[0], whole) + (rng.random(off.shape[0]) < frac)
    off = np.repeat(off, reps)
    ix = np.repeat(ix, reps)
    jitter = np.where(np.arange(off.shape[0]) > 0, 0.0, 0.0)
    order = np.argsort(off, kind="stable")
    return day_start + off[order] + jitter[order], ctx[ix][order], gen[ix][order]
