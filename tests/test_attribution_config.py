"""attribution.yaml goes through the one validated loader: unknown keys and wrong types name the
file and the field; the shipped file loads to the documented defaults."""
from __future__ import annotations

import pytest

from warehouse.attribution.config import AttributionConfig, AttributionConfigError, SkewConfig


def test_shipped_file_loads():
    cfg, skew = AttributionConfig.load(), SkewConfig.load()
    assert cfg.prefill_power_weight == 1.7 and cfg.min_idle_intervals == 20
    assert cfg.power_model.enabled and skew.max_lag_s == 30.0 and skew.correct is True


@pytest.mark.parametrize("text, field", [
    ("prefill_power_weight: 1.7\nprefil_power_weight: 2\n", "prefil_power_weight"),
    ("gap_factor: fast\n", "gap_factor"),
    ("max_power_factor: .nan\n", "max_power_factor"),
    ("min_idle_intervals: 2.5\n", "min_idle_intervals"),
    ("chips:\n  h100: {prefill_power_weight: -1}\n", "chips.h100.prefill_power_weight"),
    ("chips:\n  h100: {prefill_weight: 2}\n", "chips.h100.prefill_weight"),
    ("power_model: {min_r2: 3}\n", "power_model.min_r2"),
    ("power_model: {enable: true}\n", "power_model.enable"),
])
def test_bad_attribution_fields_are_errors_naming_file_and_field(tmp_path, text, field):
    p = tmp_path / "attribution.yaml"
    p.write_text(text)
    with pytest.raises(AttributionConfigError) as exc:
        AttributionConfig.load(p)
    assert str(p) in str(exc.value) and field in str(exc.value)


@pytest.mark.parametrize("text, field", [
    ("clock_skew: {max_lag: 30}\n", "clock_skew.max_lag"),
    ("clock_skew: {correct: 'yes'}\n", "clock_skew.correct"),
    ("clock_skew: {fine_step_s: 0}\n", "clock_skew.fine_step_s"),
    ("clock_skew: {min_correlation: .inf}\n", "clock_skew.min_correlation"),
])
def test_bad_clock_skew_fields_are_errors_naming_file_and_field(tmp_path, text, field):
    p = tmp_path / "attribution.yaml"
    p.write_text(text)
    with pytest.raises(AttributionConfigError) as exc:
        SkewConfig.load(p)
    assert str(p) in str(exc.value) and field in str(exc.value)


def test_overrides_and_clock_skew_values_are_read(tmp_path):
    p = tmp_path / "attribution.yaml"
    p.write_text("chips:\n  asic: {prefill_power_weight: 1.2}\nclock_skew: {max_lag_s: 10, correct: false}\n"
                 "power_model: {enabled: false}\n")
    cfg, skew = AttributionConfig.load(p), SkewConfig.load(p)
    assert cfg.weights("asic") == (1.2, 1.0) and cfg.weights("h100") == (1.7, 1.0)
    assert skew.max_lag_s == 10.0 and skew.correct is False and cfg.power_model.enabled is False
