"""The attribution's settings (``attribution.yaml``), read through the one validated YAML loader.

An unknown key, a wrong type or a non-finite number is an :class:`AttributionConfigError` that
names the file and the field (``collectors.config``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from collectors.config import boolean, fields, load_yaml_mapping, number

WEIGHTS_FILE = Path(__file__).parent / "attribution.yaml"

_TOP = ("prefill_power_weight", "decode_power_weight", "chips", "min_idle_intervals", "gap_factor",
        "max_power_factor", "clock_skew", "power_model", "idle_share_grain_s",
        "duckdb_memory_limit_mb")
_CHIP = ("prefill_power_weight", "decode_power_weight")


class AttributionConfigError(ValueError):
    """attribution.yaml cannot be used; the message names the file and the field."""


def _num(src, where, value, **kw):
    return number(src, where, value, error=AttributionConfigError, **kw)


@dataclass
class PowerModelConfig:
    """When the learned power model (``power_model:``) is trusted, else the per-step split is used."""

    enabled: bool = True
    min_intervals: int = 60  # busy intervals needed on a device-day
    min_r2: float = 0.5  # fit quality below this: fall back
    min_busy_fraction: float = 0.02  # a feature is fitted only if it fills this share of busy time
    price_window_s: float = 5.0  # intervals are priced (and fitted) over windows at least this long


@dataclass
class AttributionConfig:
    prefill_power_weight: float = 1.7
    decode_power_weight: float = 1.0
    chip_overrides: dict = field(default_factory=dict)
    min_idle_intervals: int = 20
    gap_factor: float = 5.0
    max_power_factor: float = 1.6
    idle_share_grain_s: float = 1.0  # idle is shared for the whole cells of this many seconds a request touched
    power_model: PowerModelConfig = field(default_factory=PowerModelConfig)
    duckdb_memory_limit_mb: int = 0  # the attribution run's DuckDB buffer cap (0: the connection's own)

    @classmethod
    def load(cls, path: Path | None = None) -> "AttributionConfig":
        src = path or WEIGHTS_FILE
        data = fields(src, "", load_yaml_mapping(src, AttributionConfigError), _TOP, error=AttributionConfigError)
        chips = fields(src, "chips", data.get("chips") or {}, [str(k) for k in (data.get("chips") or {})],
                       error=AttributionConfigError)
        overrides = {}
        for chip, o in chips.items():
            o = fields(src, f"chips.{chip}", o, _CHIP, error=AttributionConfigError)
            overrides[str(chip)] = {k: _num(src, f"chips.{chip}.{k}", v, lo=0.0, lo_open=True) for k, v in o.items()}
        base = cls()
        return cls(
            prefill_power_weight=_num(src, "prefill_power_weight", data.get("prefill_power_weight", 1.7),
                                      lo=0.0, lo_open=True),
            decode_power_weight=_num(src, "decode_power_weight", data.get("decode_power_weight", 1.0),
                                     lo=0.0, lo_open=True),
            chip_overrides=overrides,
            min_idle_intervals=_num(src, "min_idle_intervals", data.get("min_idle_intervals", 20), lo=1,
                                    integer=True),
            gap_factor=_num(src, "gap_factor", data.get("gap_factor", 5.0), lo=1.0),
            max_power_factor=_num(src, "max_power_factor", data.get("max_power_factor", 1.6), lo=1.0),
            idle_share_grain_s=_num(src, "idle_share_grain_s", data.get("idle_share_grain_s", 1.0), lo=0.0,
                                    hi=3600.0),
            power_model=_power_model(src, data.get("power_model"), base.power_model),
            duckdb_memory_limit_mb=_num(src, "duckdb_memory_limit_mb", data.get("duckdb_memory_limit_mb", 0), lo=0,
                                        integer=True),
        )

    def weights(self, chip: str) -> tuple[float, float]:
        o = self.chip_overrides.get(chip, {})
        return (float(o.get("prefill_power_weight", self.prefill_power_weight)),
                float(o.get("decode_power_weight", self.decode_power_weight)))


def _power_model(src, d, base: PowerModelConfig) -> PowerModelConfig:
    if d is None:
        return base
    d = fields(src, "power_model", d, ("enabled", "min_intervals", "min_r2", "min_busy_fraction", "price_window_s"),
               error=AttributionConfigError)
    return PowerModelConfig(
        enabled=boolean(src, "power_model.enabled", d.get("enabled", base.enabled), AttributionConfigError),
        min_intervals=_num(src, "power_model.min_intervals", d.get("min_intervals", base.min_intervals),
                           lo=1, integer=True),
        min_r2=_num(src, "power_model.min_r2", d.get("min_r2", base.min_r2), lo=-1.0, hi=1.0),
        min_busy_fraction=_num(src, "power_model.min_busy_fraction",
                               d.get("min_busy_fraction", base.min_busy_fraction), lo=0.0, hi=1.0),
        price_window_s=_num(src, "power_model.price_window_s", d.get("price_window_s", base.price_window_s),
                            lo=0.0, lo_open=True, hi=3600.0),
    )


@dataclass
class SkewConfig:
    """Thresholds for the clock-skew estimate and for correcting it (``clock_skew:``)."""

    max_lag_s: float = 30.0
    coarse_step_s: float = 1.0
    fine_step_s: float = 0.5
    min_correlation: float = 0.2  # peak correlation below this: no confident estimate
    min_margin: float = 0.01  # peak must beat lag 0 by at least this much
    min_abs_skew_s: float = 1.0  # smaller skews are left alone
    correct: bool = True  # False: estimate and report, never correct

    @classmethod
    def load(cls, path: Path | None = None) -> "SkewConfig":
        src = path or WEIGHTS_FILE
        data = load_yaml_mapping(src, AttributionConfigError).get("clock_skew") or {}
        base = cls()
        numeric = ("max_lag_s", "coarse_step_s", "fine_step_s", "min_correlation", "min_margin", "min_abs_skew_s")
        data = fields(src, "clock_skew", data, numeric + ("correct",), error=AttributionConfigError)
        kw = {k: _num(src, f"clock_skew.{k}", data.get(k, getattr(base, k)),
                      lo=-1.0 if k in ("min_correlation", "min_margin") else 0.0,
                      lo_open=k in ("max_lag_s", "coarse_step_s", "fine_step_s")) for k in numeric}
        kw["correct"] = boolean(src, "clock_skew.correct", data.get("correct", base.correct), AttributionConfigError)
        return cls(**kw)
