"""Issue 12: on a fleet whose chips draw prefill/decode active power in ratios far from the flat
1.7 (MI300X near 2.7, the ASIC near 1.2), the power model learned per device-day recovers each
chip's ratio within 15 %, and long-prompt requests carry no active-energy bias above 3 %.

The true ratio is computed from the catalog rows the simulator ran (prefill power and P(b) above
the device's true idle) over the replica's own request timeline: prefill power over the decode
power averaged over the time spent decoding at each batch size, as the learned ratio is defined.
"""
from __future__ import annotations

import numpy as np
import pytest

from collectors.sim.fleet import load_fleet
from collectors.sim.simulate import simulate
from warehouse.attribution.config import AttributionConfig, PowerModelConfig
from warehouse.attribution.evaluate import _read_truth
from warehouse.attribution.run import run_attribution_days
from warehouse.ingest.load import connect, load_spool

FLEET = """
name: prefill-ratio
nodes:
  - {name: h100-0, chip: nvidia-h100-sxm, devices: 1, site: us-east}
  - {name: mi300x-0, chip: amd-mi300x, devices: 1, site: us-east}
  - {name: asic-0, chip: custom-asic, devices: 1, site: us-central}
replicas:
  - {node: h100-0, model: llama-8b, devices: [0]}
  - {node: mi300x-0, model: llama-8b, devices: [0]}
  - {node: asic-0, model: llama-8b, devices: [0]}
traffic:
  mode: synthetic
  requests_per_s: {llama-8b: 3.0}
  diurnal_amplitude: 0.35
  peak_hour_utc: 15
  weekend_factor: 0.8
  growth_per_week: 0.0
  tasks: {chat: 0.4, translate: 0.1, summarize: 0.2, code-generate: 0.1, code-optimize: 0.1, code-fix: 0.1}
  languages: {en: 0.5, fr: 0.2, de: 0.1, es: 0.1, ja: 0.1}
  tiers: {free: 0.45, subscription: 0.4, api: 0.15}
  error_rate: 0.0
perf:
  # MI300X: prefill 700 W, decode 330 + 25 ln b W (idle ~160 W): active ratio ~2.7 at batch 3-4
  - {model: llama-8b, chip: amd-mi300x, tp: 1, max_batch: 256, prefill_tokens_per_s: 18000, prefill_power_w: 700,
     decode_t0_ms: 6.0, decode_t1_ms: 0.080, decode_power_a_w: 330, decode_power_c_w: 25,
     source: "test: prefill/decode active power ratio near 2.7"}
  # ASIC: prefill 420 W, decode 340 + 20 ln b W (idle ~55 W): active ratio ~1.2
  - {model: llama-8b, chip: custom-asic, tp: 1, max_batch: 256, prefill_tokens_per_s: 24000, prefill_power_w: 420,
     decode_t0_ms: 5.0, decode_t1_ms: 0.050, decode_power_a_w: 340, decode_power_c_w: 20,
     source: "test: prefill/decode active power ratio near 1.2"}
faults: {}
"""


def _true_ratio(s, f, e, perf, rated_w: float, idle_w: float) -> float:
    """Prefill active power over the decode active power averaged over decode time, from the
    timeline: the device prefills while any request does (decode pauses), else decodes the batch."""
    t = np.concatenate([s, f, f, e])
    pre = np.concatenate([np.ones_like(s), -np.ones_like(f), np.zeros_like(f), np.zeros_like(e)])
    dec = np.concatenate([np.zeros_like(s), np.zeros_like(f), np.ones_like(f), -np.ones_like(e)])
    o = np.argsort(t, kind="stable")
    t, n_pre, n_dec = t[o], np.cumsum(pre[o])[:-1], np.cumsum(dec[o])[:-1]
    dt = np.diff(t)
    decoding = (n_pre < 0.5) & (n_dec > 0.5)
    b, w = n_dec[decoding], dt[decoding]
    p_b = np.minimum(rated_w, perf.decode_power_a_w + perf.decode_power_c_w * np.log(np.maximum(b, 1.0))) - idle_w
    return (perf.prefill_power_w - idle_w) / float((np.maximum(p_b, 0.0) * w).sum() / w.sum())


@pytest.fixture(scope="module")
def attributed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ratio")
    fleet_file = tmp / "prefill-ratio.yaml"
    fleet_file.write_text(FLEET)
    home = tmp / "home"
    simulate(str(fleet_file), home, "2026-10-01", 1, 30.0, 5, progress=False)
    con = connect(home / "warehouse.duckdb")
    load_spool(con, home / "spool")
    run_attribution_days(con)
    yield con, load_fleet(str(fleet_file)), home
    con.close()


def test_learned_prefill_decode_ratios_land_within_15_pct_of_the_true_ones(attributed):
    con, fleet, home = attributed
    idle = {r["device_id"]: r["true_idle_w"]
            for r in _read_truth(home / "truth" / "devices", 2, ["device_id", "true_idle_w"]).to_pylist()}
    learned = {node: (ratio, reason) for node, ratio, reason in con.execute("""
        select split_part(device_id, '/', 1), prefill_decode_ratio, fallback_reason from attribution.power_model
    """).fetchall()}
    true = {}
    for rep in fleet.replicas:
        s, f, e = (np.asarray(x, np.float64) for x in zip(*con.execute("""
            select epoch_us(r.scheduled_ts) / 1e6, epoch_us(r.first_token_ts) / 1e6,
                   epoch_us(greatest(r.finish_ts, r.first_token_ts)) / 1e6
            from raw.requests r join raw.replicas p using (replica_id) where p.node = ?
        """, [rep.node]).fetchall()))
        true[rep.node] = _true_ratio(s, f, e, fleet.perf_for(rep), fleet.chips[rep.chip].rated_power_w,
                                     idle[f"{rep.node}/0"])
    # the fleet is what it claims: ratios far from the flat 1.7 on both sides
    assert true["mi300x-0"] > 2.4 and true["asic-0"] < 1.3, true
    for node, t in true.items():
        ratio, reason = learned[node]
        assert reason is None, (node, reason)
        assert ratio == pytest.approx(t, rel=0.15), (node, ratio, t)


def _long_prompt_active_bias(con, home) -> dict:
    """Per chip, attributed over true active energy - 1 for the requests whose prompt is in the
    chip's top decile."""
    con.register("_truth_req", _read_truth(home / "truth" / "requests", 3, ["request_id", "true_active_energy_j"]))
    rows = con.execute("""
        with r as (
            select p.chip, a.active_energy_j, t.true_active_energy_j,
                   r.prompt_tokens >= quantile_cont(r.prompt_tokens, 0.9) over (partition by p.chip) as long_prompt
            from raw.requests r join raw.replicas p using (replica_id)
            join (select request_id, sum(active_energy_j) as active_energy_j
                  from attribution.request_energy group by 1) a using (request_id)
            join _truth_req t using (request_id))
        select chip, sum(active_energy_j) / sum(true_active_energy_j) - 1, count(*)
        from r where long_prompt group by 1 order by 1
    """).fetchall()
    con.unregister("_truth_req")
    return {chip: (bias, n) for chip, bias, n in rows}


def test_long_prompt_requests_carry_no_active_energy_bias_above_3_pct(attributed):
    con, _, home = attributed
    learned = _long_prompt_active_bias(con, home)
    assert set(learned) == {"amd-mi300x", "custom-asic", "nvidia-h100-sxm"}
    for chip, (bias, n) in learned.items():
        assert n > 1000, (chip, n)
        assert abs(bias) <= 0.03, (chip, bias)
    # the flat 1.7 weights (power model off) misprice the MI300X's long prompts: the test can tell
    run_attribution_days(con, cfg=AttributionConfig(power_model=PowerModelConfig(enabled=False)))
    flat = _long_prompt_active_bias(con, home)
    run_attribution_days(con)
    assert flat["amd-mi300x"][0] < -0.03, flat
