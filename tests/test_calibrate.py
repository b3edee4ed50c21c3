"""The ML.ENERGY v3 fit behind models.yaml and the per-pair calibration of the serving kernel."""
from __future__ import annotations

import numpy as np
import pytest

from collectors.sim import mlenergy
from collectors.sim.calibrate import J_TOL_REL, POWER_TOL_REL, calibrate_pairs, catalog_perf
from collectors.sim.mlenergy import _fit_times, _rel_lstsq, configs, fitted_rows, load_measurements, v3_rows


@pytest.fixture(scope="module")
def report():
    return calibrate_pairs()


def test_every_measured_pair_is_simulated_within_tolerance_at_every_batch(report):
    pairs = load_measurements()["pairs"]
    seen = {(r["model"], r["chip"]) for r in report["rows"]}
    assert seen == {(p.model, p.chip) for p in pairs}
    assert len(report["rows"]) == sum(len(configs(p)) for p in pairs)
    bad = [r for r in report["rows"]
           if abs(r["j_error_rel"]) > J_TOL_REL or abs(r["power_error_rel"]) > POWER_TOL_REL]
    assert not bad, bad
    assert report["all_inside"]
    # the simulated replica ran at the measured batch (saturated queue, batch capped there)
    for r in report["rows"]:
        assert r["simulated_batch"] == pytest.approx(r["measured_batch"], rel=0.05, abs=1.0), r


def test_the_2026_models_are_calibrated_on_h100_and_b200(report):
    pairs = {(r["model"], r["chip"]) for r in report["rows"]}
    for model in ("qwen3-30b-a3b", "qwen3-coder-30b-a3b", "gpt-oss-120b", "llama-405b", "qwen3-235b-thinking"):
        assert (model, "nvidia-h100-sxm") in pairs and (model, "nvidia-b200") in pairs, model


def test_catalog_rows_are_the_fit_not_hand_typed():
    perf = catalog_perf()
    rows = fitted_rows()
    assert len(rows) >= 10 + 13  # 10 measured pairs fitted, 13 scaled
    for r in rows:
        p = perf[(r["model"], r["chip"])]
        for k in ("tp", "max_batch", "prefill_tokens_per_s", "prefill_power_w", "decode_t0_ms", "decode_t1_ms",
                  "decode_power_a_w", "decode_power_c_w"):
            assert getattr(p, k) == pytest.approx(r[k], rel=1e-9), (r["model"], r["chip"], k)


def test_scaled_rows_are_marked_as_assumptions():
    from collectors.config import load_yaml_mapping
    from collectors.catalog import CATALOG

    src = {(r["model"], r["chip"]): r["source"] for r in load_yaml_mapping(CATALOG / "models.yaml")["perf"]}
    measured = {(p.model, p.chip) for p in load_measurements()["pairs"]}
    for key, s in src.items():
        if key not in measured:
            assert "assumption" in s, key
        elif key[0] not in ("llama-8b", "llama-70b"):
            assert s.startswith("fit (tokenwatt calibrate --fit) to ML.ENERGY v3"), key


def test_fit_recovers_a_known_serving_model():
    t0, t1, g, a, c = 9.0, 0.12, 0.04, 380.0, 55.0
    b = np.array([8, 16, 32, 64, 128, 256.0])
    out = np.array([900, 880, 920, 910, 905, 915.0])
    itl = t0 + t1 * b
    thr = b / ((itl + 1000 * g * b / out) / 1000)
    cs = [{"batch": bb, "itl_ms": ii, "throughput": tt, "output_len": oo} for bb, ii, tt, oo in zip(b, itl, thr, out)]
    f0, f1, fg = _fit_times(cs)
    assert (f0, f1, fg) == pytest.approx((t0, t1, g), rel=1e-6)
    fa, fc = _rel_lstsq(np.log(b), a + c * np.log(b))
    assert (fa, fc) == pytest.approx((a, c), rel=1e-9)


@pytest.mark.parametrize("model, model_id", [("gpt-oss-120b", "openai/gpt-oss-120b"),
                                             ("qwen3-235b-thinking", "Qwen/Qwen3-235B-A22B-Thinking-2507-FP8")])
def test_reasoning_output_length_is_the_measured_mean(model, model_id):
    from collectors.sim.fleet import load_fleet

    m = load_fleet("fleet-2026").models[model]
    lens = [float(r["avg_output_len"]) for r in v3_rows() if r["model_id"] == model_id and r["task"] == "gpqa"]
    assert len(lens) > 10
    assert m.output_tokens["mean"] == round(float(np.mean(lens)))


def test_a_pair_without_measurements_is_refused(monkeypatch):
    p = load_measurements()["pairs"][0]
    import dataclasses

    ghost = dataclasses.replace(p, model_id="nobody/none")
    with pytest.raises(mlenergy.MeasurementError, match="0 v3 configurations"):
        configs(ghost)


def test_moe_weights_follow_total_parameters_and_decode_the_active_ones():
    from collectors.sim.fleet import load_fleet

    f = load_fleet("fleet-2026")
    for mid in ("qwen3-30b-a3b", "qwen3-coder-30b-a3b", "gpt-oss-120b", "qwen3-235b-thinking"):
        m = f.models[mid]
        assert m.active_params_billions <= m.params_billions / 10
        assert m.weights_gb >= 0.5 * m.params_billions  # >= 4 bits per weight of the total
    # compute from active: per token the 3B-active MoE decodes faster than the dense 70B on one H100 batch
    perf = catalog_perf()
    moe = perf[("qwen3-30b-a3b", "nvidia-h100-sxm")]
    dense = perf[("llama-70b", "nvidia-h100-sxm")]
    assert moe.decode_step_s(8) * moe.tp < dense.decode_step_s(8) * dense.tp
