"""The scenario file (``scenarios.yaml``): forecast settings, scenarios and the fleet-scale figures.

Read with the one validated loader (collectors.config): an unknown key, a wrong type or a
non-finite number raises :class:`ScenarioError` naming the file and the field (dotted path, e.g.
``scenarios[1].moves[0].share``). docs/money.md explains what a scenario does.
"""
from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from collectors import config
from collectors.config import load_yaml_mapping

SCENARIOS_FILE = Path(__file__).parent / "scenarios.yaml"
SCENARIOS_ENV = "TOKENWATT_SCENARIOS"
PRICE_KEYS = ("rental_hardware", "owned_hardware", "electricity", "revenue")

_TOP = {"forecast", "scenarios", "fleet_scale"}
_FORECAST = {"horizon_months", "min_horizon_days", "backtest_days", "season_length", "coverage_horizons_days",
             "coverage_origins", "bootstrap_samples", "calibration_window_days", "calibration_horizon_days",
             "min_calibration_errors"}
_SCENARIO = {"name", "description", "start", "start_offset_days", "moves", "prices", "volume"}
_MOVE = {"from", "to", "share", "usd_per_mtok"}
_SCALE = {"annual_revenue_usd", "annual_inference_cost_usd", "annual_other_cost_usd", "source"}


class ScenarioError(ValueError):
    """A scenario file that must not be used: the message names the file and the field."""


@dataclass(frozen=True)
class Move:
    sources: tuple[str, ...]
    target: str
    share: float
    usd_per_mtok: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str = ""
    start: dt.date | None = None
    start_offset_days: int | None = None
    moves: tuple[Move, ...] = ()
    prices: dict[str, float] = field(default_factory=dict)
    extra_growth_per_week: float = 0.0

    def start_date(self, last_history_day: dt.date) -> dt.date | None:
        """First day the change is in effect; None = always (the whole history too)."""
        if self.start is not None:
            return self.start
        if self.start_offset_days is not None:
            return last_history_day + dt.timedelta(days=self.start_offset_days)
        return None

    @property
    def changes_unit_economics(self) -> bool:
        return bool(self.moves) or any(v != 1.0 for v in self.prices.values())


@dataclass(frozen=True)
class ForecastConfig:
    horizon_months: int = 12
    min_horizon_days: int = 90
    backtest_days: int = 14
    season_length: int = 7
    #: rolling-origin backtest horizons whose band coverage is measured and stored
    coverage_horizons_days: tuple[int, ...] = (1, 7, 30)
    #: how many forecast origins the rolling backtest uses (at most; fewer on a short history)
    coverage_origins: int = 60
    #: bootstrap resamples of the trend for the growth-rate uncertainty of the bands
    bootstrap_samples: int = 200
    #: bands calibrated on past errors (conformal.py): from the origins of this many days before the
    #: forecast origin, at horizons up to calibration_horizon_days, once a horizon has
    #: min_calibration_errors errors (else extrapolated from shorter ones)
    calibration_window_days: int = 90
    calibration_horizon_days: int = 30
    min_calibration_errors: int = 5


@dataclass(frozen=True)
class FleetScale:
    annual_revenue_usd: float
    annual_inference_cost_usd: float
    annual_other_cost_usd: float
    source: str


def _num(src, where, v, lo=None, hi=None) -> float:
    if v is None:
        raise ScenarioError(f"{src}: missing field '{where}'")
    return config.number(src, where, v, lo=lo, hi=hi, error=ScenarioError)


def _int(src, where, v, lo=None, hi=None) -> int:
    if v is None:
        raise ScenarioError(f"{src}: missing field '{where}'")
    return config.number(src, where, v, lo=lo, hi=hi, integer=True, error=ScenarioError)


def _map(src, where, v, allowed) -> dict:
    return config.fields(src, where, v, allowed, error=ScenarioError)


def _text(src, where, v, required=False) -> str:
    if v is None:
        if required:
            raise ScenarioError(f"{src}: missing field '{where}'")
        return ""
    if not isinstance(v, str) or (required and not v.strip()):
        raise ScenarioError(f"{src}: field '{where}' must be text, got {type(v).__name__} {v!r}")
    return v


def _forecast_config(src: str, f: dict) -> ForecastConfig:
    f = _map(src, "forecast", f, _FORECAST)
    hz = f.get("coverage_horizons_days", [1, 7, 30])
    if not isinstance(hz, list) or not hz:
        raise ScenarioError(f"{src}: field 'forecast.coverage_horizons_days' must be a non-empty list of days")
    return ForecastConfig(
        horizon_months=_int(src, "forecast.horizon_months", f.get("horizon_months", 12), 1, 120),
        min_horizon_days=_int(src, "forecast.min_horizon_days", f.get("min_horizon_days", 90), 1, 3660),
        backtest_days=_int(src, "forecast.backtest_days", f.get("backtest_days", 14), 1, 366),
        season_length=_int(src, "forecast.season_length", f.get("season_length", 7), 1, 366),
        coverage_horizons_days=tuple(sorted({_int(src, f"forecast.coverage_horizons_days[{i}]", v, 1, 366)
                                             for i, v in enumerate(hz)})),
        coverage_origins=_int(src, "forecast.coverage_origins", f.get("coverage_origins", 60), 0, 366),
        bootstrap_samples=_int(src, "forecast.bootstrap_samples", f.get("bootstrap_samples", 200), 10, 10000),
        calibration_window_days=_int(src, "forecast.calibration_window_days", f.get("calibration_window_days", 90),
                                     2, 3660),
        calibration_horizon_days=_int(src, "forecast.calibration_horizon_days",
                                      f.get("calibration_horizon_days", 30), 1, 366),
        min_calibration_errors=_int(src, "forecast.min_calibration_errors", f.get("min_calibration_errors", 5),
                                    1, 366),
    )


def _start(src: str, w: str, start: Any) -> dt.date | None:
    if start is None or (isinstance(start, dt.date) and not isinstance(start, dt.datetime)):
        return start
    if isinstance(start, dt.datetime):
        return start.date()
    if isinstance(start, str):
        try:
            return dt.date.fromisoformat(start)
        except ValueError:
            pass
    raise ScenarioError(f"{src}: field '{w}.start' must be a date YYYY-MM-DD, got {start!r}")


def _move(src: str, wm: str, m: Any) -> Move:
    m = _map(src, wm, m, _MOVE)
    fr = m.get("from")
    fr = [fr] if isinstance(fr, str) else fr
    if not isinstance(fr, list) or not fr or not all(isinstance(x, str) and x for x in fr):
        raise ScenarioError(f"{src}: field '{wm}.from' must be a vendor or a list of vendors, got {m.get('from')!r}")
    to = _text(src, f"{wm}.to", m.get("to"), required=True)
    if to in fr:
        raise ScenarioError(f"{src}: field '{wm}.to' ({to}) is also in from")
    share = _num(src, f"{wm}.share", m.get("share"), 0.0, 1.0)
    upm = m.get("usd_per_mtok") or {}
    if not isinstance(upm, dict):
        raise ScenarioError(f"{src}: field '{wm}.usd_per_mtok' must map model -> USD per million tokens")
    upm = {str(k): _num(src, f"{wm}.usd_per_mtok.{k}", v, 0.0, 1e4) for k, v in upm.items()}
    return Move(tuple(fr), to, share, upm)


def _scenario(src: str, i: int, s: Any, taken: set[str]) -> Scenario:
    w = f"scenarios[{i}]"
    s = _map(src, w, s, _SCENARIO)
    name = _text(src, f"{w}.name", s.get("name"), required=True)
    if any(c.isspace() for c in name):
        raise ScenarioError(f"{src}: field '{w}.name' must not contain spaces, got {name!r}")
    if name in taken:
        raise ScenarioError(f"{src}: field '{w}.name': duplicate scenario name {name!r}")
    start = _start(src, w, s.get("start"))
    offset = s.get("start_offset_days")
    if offset is not None:
        offset = _int(src, f"{w}.start_offset_days", offset, -3660, 3660)
    if start is not None and offset is not None:
        raise ScenarioError(f"{src}: field '{w}': give start or start_offset_days, not both")
    mv = s.get("moves") or []
    if not isinstance(mv, list):
        raise ScenarioError(f"{src}: field '{w}.moves' must be a list")
    moves = tuple(_move(src, f"{w}.moves[{j}]", m) for j, m in enumerate(mv))
    prices = _map(src, f"{w}.prices", s.get("prices") or {}, set(PRICE_KEYS))
    prices = {k: _num(src, f"{w}.prices.{k}", v, 0.0, 100.0) for k, v in prices.items()}
    vol = _map(src, f"{w}.volume", s.get("volume") or {}, {"extra_growth_per_week"})
    growth = _num(src, f"{w}.volume.extra_growth_per_week", vol.get("extra_growth_per_week", 0.0), -0.5, 2.0)
    return Scenario(name, _text(src, f"{w}.description", s.get("description")), start, offset, moves, prices, growth)


def scenarios_path(path: Path | str | None = None) -> Path:
    """The scenario file to use: ``path``, else ``$TOKENWATT_SCENARIOS``, else the bundled one."""
    return Path(path or os.environ.get(SCENARIOS_ENV) or SCENARIOS_FILE)


def load_scenarios(path: Path | str | None = None) -> tuple[ForecastConfig, list[Scenario], FleetScale]:
    """Parse and validate a scenario file (``path``, else ``$TOKENWATT_SCENARIOS``, else the bundled one)."""
    path = scenarios_path(path)
    src = str(path)
    raw = load_yaml_mapping(path, ScenarioError)
    _map(src, "", raw, _TOP)
    cfg = _forecast_config(src, raw.get("forecast") or {})
    items = raw.get("scenarios")
    if not isinstance(items, list) or not items:
        raise ScenarioError(f"{src}: field 'scenarios' must be a non-empty list")
    scenarios: list[Scenario] = []
    for i, s in enumerate(items):
        scenarios.append(_scenario(src, i, s, {x.name for x in scenarios}))
    if "current" not in {s.name for s in scenarios}:
        raise ScenarioError(f"{src}: field 'scenarios' must include a scenario named 'current' (the baseline)")
    if any(s.name == "current" and (s.changes_unit_economics or s.extra_growth_per_week) for s in scenarios):
        raise ScenarioError(f"{src}: field 'scenarios': 'current' must not change anything")
    fs = _map(src, "fleet_scale", raw.get("fleet_scale") or {}, _SCALE)
    scale = FleetScale(
        annual_revenue_usd=_num(src, "fleet_scale.annual_revenue_usd", fs.get("annual_revenue_usd", 3.7e9), 0),
        annual_inference_cost_usd=_num(src, "fleet_scale.annual_inference_cost_usd",
                                       fs.get("annual_inference_cost_usd", 4.0e9), 0),
        annual_other_cost_usd=_num(src, "fleet_scale.annual_other_cost_usd", fs.get("annual_other_cost_usd", 0.0), 0),
        source=_text(src, "fleet_scale.source", fs.get("source")),
    )
    return cfg, scenarios, scale
