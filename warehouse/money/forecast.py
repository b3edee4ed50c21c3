"""Operating-loss forecasts per fleet-mix / price scenario, and a projection to fleet scale.

Plain library (no Dagster): ``run_forecast(con)`` reads the marts, writes
``marts.fct_loss_forecast`` and ``marts.fct_fleet_scale_projection`` and returns a summary.
The method is documented in docs/money.md; in short:

1. History: the daily operating loss of the whole fleet (``marts.fct_pnl_daily``, vendor 'all':
   fleet bill - revenue); tokens, allocated cost and revenue per (day, vendor, model) from
   ``marts.fct_cost_per_token_daily``; each vendor-day's cost split into electricity, rented
   hardware and owned hardware from ``marts.fct_device_energy_daily`` and ``ref.chip_costs``.
2. A scenario (``warehouse/scenarios.yaml``) transforms those unit economics: moves a share of
   tokens between vendors (the moved tokens cost the target's measured cost per token for the
   same model), scales prices (rental, owned hardware, electricity, revenue), adds demand growth.
   The scenario's daily loss = the P&L loss + (scenario cost - allocated cost) - (scenario revenue
   - revenue), times the volume factor. "current" is the P&L loss itself.
3. statsforecast AutoETS (weekly season when there are >= 2 seasons plus the backtest window,
   else non-seasonal, else Naive) forecasts each scenario's series with 80 % and 95 % intervals;
   the same model is first fitted without the last ``backtest_days`` days and scored on them
   (MAPE in percent, and MASE), and that error is stored with the forecast rows. A change that
   starts on a date uses the current forecast before it and the scenario's after it.
4. Months: history days plus forecast days of each calendar month; the month's interval bounds
   are sums of the daily bounds (exact if daily errors are perfectly correlated, conservative
   otherwise).
"""
from __future__ import annotations

import datetime as dt
import json
import math
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from collectors.config import load_yaml_mapping

SCENARIOS_FILE = Path(__file__).parent / "scenarios.yaml"
SCENARIOS_ENV = "TOKENWATT_SCENARIOS"
LEVELS = (80, 95)
Z80 = 1.2815515655446004  # the standard normal's 90th percentile: an 80 % interval is mean +- Z80 sd
PRICE_KEYS = ("rental_hardware", "owned_hardware", "electricity", "revenue")

FORECAST_COLUMNS = [
    "scenario", "grain", "period_start", "period_end", "kind", "loss_usd", "lo80_usd", "hi80_usd", "lo95_usd",
    "hi95_usd", "backtest_mape", "backtest_mase", "backtest_days", "interval_scale", "model", "days",
    "forecast_days", "description", "notes",
]
PROJECTION_COLUMNS = [
    "scenario", "annual_revenue_usd", "annual_inference_cost_usd", "annual_other_cost_usd",
    "annual_operating_loss_usd", "delta_vs_current_usd", "inference_cost_ratio", "revenue_ratio",
    "share_of_year_in_effect", "assumptions",
]


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


@dataclass(frozen=True)
class FleetScale:
    annual_revenue_usd: float
    annual_inference_cost_usd: float
    annual_other_cost_usd: float
    source: str


# ---------------------------------------------------------------------------------------------
# scenario file
# ---------------------------------------------------------------------------------------------

def _num(src, where, v, lo=None, hi=None) -> float:
    if v is None:
        raise ScenarioError(f"{src}: missing field '{where}'")
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v != v:
        raise ScenarioError(f"{src}: field '{where}' must be a number, got {type(v).__name__} {v!r}")
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        raise ScenarioError(f"{src}: field '{where}' = {v!r} is outside [{lo}, {hi if hi is not None else 'inf'}]")
    return float(v)


def _int(src, where, v, lo=None, hi=None) -> int:
    x = _num(src, where, v, lo, hi)
    if x != int(x):
        raise ScenarioError(f"{src}: field '{where}' must be a whole number, got {v!r}")
    return int(x)


def _map(src, where, v, allowed) -> dict:
    if not isinstance(v, dict):
        raise ScenarioError(f"{src}: field '{where}' must be a mapping, got {type(v).__name__} {v!r}")
    unknown = sorted(str(k) for k in v if k not in allowed)
    if unknown:
        raise ScenarioError(f"{src}: unknown field '{where}.{unknown[0]}' (allowed: {', '.join(sorted(allowed))})")
    return v


def _text(src, where, v, required=False) -> str:
    if v is None:
        if required:
            raise ScenarioError(f"{src}: missing field '{where}'")
        return ""
    if not isinstance(v, str) or (required and not v.strip()):
        raise ScenarioError(f"{src}: field '{where}' must be text, got {type(v).__name__} {v!r}")
    return v


def load_scenarios(path: Path | str | None = None) -> tuple[ForecastConfig, list[Scenario], FleetScale]:
    """Parse and validate a scenario file (``path``, else ``$TOKENWATT_SCENARIOS``, else the bundled one)."""
    path = Path(path or os.environ.get(SCENARIOS_ENV) or SCENARIOS_FILE)
    src = str(path)
    raw = load_yaml_mapping(path, ScenarioError)
    _map(src, "(top level)", raw, {"forecast", "scenarios", "fleet_scale"})

    f = _map(src, "forecast", raw.get("forecast") or {}, {"horizon_months", "min_horizon_days", "backtest_days",
                                                           "season_length"})
    cfg = ForecastConfig(
        horizon_months=_int(src, "forecast.horizon_months", f.get("horizon_months", 12), 1, 120),
        min_horizon_days=_int(src, "forecast.min_horizon_days", f.get("min_horizon_days", 90), 1, 3660),
        backtest_days=_int(src, "forecast.backtest_days", f.get("backtest_days", 14), 1, 366),
        season_length=_int(src, "forecast.season_length", f.get("season_length", 7), 1, 366),
    )

    items = raw.get("scenarios")
    if not isinstance(items, list) or not items:
        raise ScenarioError(f"{src}: field 'scenarios' must be a non-empty list")
    scenarios: list[Scenario] = []
    for i, s in enumerate(items):
        w = f"scenarios[{i}]"
        s = _map(src, w, s, {"name", "description", "start", "start_offset_days", "moves", "prices", "volume"})
        name = _text(src, f"{w}.name", s.get("name"), required=True)
        if any(c.isspace() for c in name):
            raise ScenarioError(f"{src}: field '{w}.name' must not contain spaces, got {name!r}")
        if name in {x.name for x in scenarios}:
            raise ScenarioError(f"{src}: field '{w}.name': duplicate scenario name {name!r}")
        start = s.get("start")
        if start is not None:
            if isinstance(start, dt.datetime):
                start = start.date()
            elif isinstance(start, str):
                try:
                    start = dt.date.fromisoformat(start)
                except ValueError:
                    raise ScenarioError(f"{src}: field '{w}.start' must be a date YYYY-MM-DD, got {start!r}") from None
            elif not isinstance(start, dt.date):
                raise ScenarioError(f"{src}: field '{w}.start' must be a date YYYY-MM-DD, got {start!r}")
        offset = s.get("start_offset_days")
        if offset is not None:
            offset = _int(src, f"{w}.start_offset_days", offset, -3660, 3660)
        if start is not None and offset is not None:
            raise ScenarioError(f"{src}: field '{w}': give start or start_offset_days, not both")
        moves = []
        mv = s.get("moves") or []
        if not isinstance(mv, list):
            raise ScenarioError(f"{src}: field '{w}.moves' must be a list")
        for j, m in enumerate(mv):
            wm = f"{w}.moves[{j}]"
            m = _map(src, wm, m, {"from", "to", "share", "usd_per_mtok"})
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
            moves.append(Move(tuple(fr), to, share, upm))
        prices = _map(src, f"{w}.prices", s.get("prices") or {}, set(PRICE_KEYS))
        prices = {k: _num(src, f"{w}.prices.{k}", v, 0.0, 100.0) for k, v in prices.items()}
        vol = _map(src, f"{w}.volume", s.get("volume") or {}, {"extra_growth_per_week"})
        growth = _num(src, f"{w}.volume.extra_growth_per_week", vol.get("extra_growth_per_week", 0.0), -0.5, 2.0)
        scenarios.append(Scenario(name, _text(src, f"{w}.description", s.get("description")), start, offset,
                                  tuple(moves), prices, growth))
    if "current" not in {s.name for s in scenarios}:
        raise ScenarioError(f"{src}: field 'scenarios' must include a scenario named 'current' (the baseline)")
    bad = [s for s in scenarios if s.name == "current" and (s.changes_unit_economics or s.extra_growth_per_week)]
    if bad:
        raise ScenarioError(f"{src}: field 'scenarios': 'current' must not change anything")

    fs = _map(src, "fleet_scale", raw.get("fleet_scale") or {}, {"annual_revenue_usd", "annual_inference_cost_usd",
                                                                  "annual_other_cost_usd", "source"})
    scale = FleetScale(
        annual_revenue_usd=_num(src, "fleet_scale.annual_revenue_usd", fs.get("annual_revenue_usd", 3.7e9), 0),
        annual_inference_cost_usd=_num(src, "fleet_scale.annual_inference_cost_usd",
                                       fs.get("annual_inference_cost_usd", 4.0e9), 0),
        annual_other_cost_usd=_num(src, "fleet_scale.annual_other_cost_usd", fs.get("annual_other_cost_usd", 0.0), 0),
        source=_text(src, "fleet_scale.source", fs.get("source")),
    )
    return cfg, scenarios, scale


# ---------------------------------------------------------------------------------------------
# history and scenario transforms
# ---------------------------------------------------------------------------------------------

@dataclass
class History:
    dates: list[dt.date]          # every day from the first to the last day of the P&L (no gaps)
    loss: np.ndarray              # [d] P&L operating loss (fleet bill - revenue), USD
    bill: np.ndarray              # [d] fleet bill, USD
    vendors: list[str]
    models: list[str]
    tokens: np.ndarray            # [d, v, m]
    cost: np.ndarray              # [d, v, m] allocated cost (allocation basis), USD
    revenue: np.ndarray           # [d, v, m] USD
    composition: np.ndarray       # [d, v, 3] share of the vendor-day's cost: electricity, rented hw, owned hw

    @property
    def last_day(self) -> dt.date:
        return self.dates[-1]


def load_history(con: duckdb.DuckDBPyConnection) -> History:
    pnl = con.execute("""select date, operating_loss_usd, total_cost_usd from marts.fct_pnl_daily
                         where vendor = 'all' and date is not null order by date""").fetchall()
    if not pnl:
        raise ValueError("marts.fct_pnl_daily has no rows for vendor 'all': nothing to forecast")
    first, last = pnl[0][0], pnl[-1][0]
    dates = [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]
    idx = {d: i for i, d in enumerate(dates)}
    loss = np.full(len(dates), np.nan)
    bill = np.zeros(len(dates))
    for d, lo, b in pnl:
        loss[idx[d]] = lo
        bill[idx[d]] = b or 0.0
    # a missing day in the P&L (no device-day, no request): carry the neighbour (rare; noted in the docs)
    loss = pd.Series(loss).interpolate(limit_direction="both").to_numpy()

    units = con.execute("""select date, vendor, model, sum(tokens), sum(cost_usd), sum(revenue_usd)
                           from marts.fct_cost_per_token_daily where date is not null
                           group by all order by all""").fetchall()
    vendors = sorted({r[1] for r in units if r[1] is not None})
    models = sorted({r[2] for r in units if r[2] is not None})
    vi = {v: i for i, v in enumerate(vendors)}
    mi = {m: i for i, m in enumerate(models)}
    shape = (len(dates), len(vendors), len(models))
    tokens, cost, revenue = np.zeros(shape), np.zeros(shape), np.zeros(shape)
    for d, v, m, t, c, r in units:
        if d in idx and v in vi and m in mi:
            tokens[idx[d], vi[v], mi[m]] += t or 0
            cost[idx[d], vi[v], mi[m]] += c or 0.0
            revenue[idx[d], vi[v], mi[m]] += r or 0.0

    comp_rows = con.execute("""
        select e.date, e.vendor, sum(e.energy_cost_usd),
               sum(case when c.basis = 'rental' then e.hardware_cost_usd else 0 end),
               sum(case when c.basis = 'rental' then 0 else e.hardware_cost_usd end)
        from marts.fct_device_energy_daily as e left join ref.chip_costs as c on c.chip = e.chip
        group by all""").fetchall()
    parts = np.zeros((len(dates), len(vendors), 3))
    for d, v, ec, rh, oh in comp_rows:
        if d in idx and v in vi:
            parts[idx[d], vi[v]] = (ec or 0.0, rh or 0.0, oh or 0.0)
    composition = np.zeros_like(parts)
    for j in range(len(vendors)):
        tot = parts[:, j].sum()
        mean = parts[:, j].sum(axis=0) / tot if tot > 0 else np.array([1.0, 0.0, 0.0])
        for i in range(len(dates)):
            s = parts[i, j].sum()
            composition[i, j] = parts[i, j] / s if s > 0 else mean
    return History(dates, loss, bill, vendors, models, tokens, cost, revenue, composition)


@dataclass
class Transformed:
    adjusted_loss: np.ndarray     # [d] loss with the scenario's mix/price changes in effect every day
    cost: np.ndarray              # [d] scenario fleet cost, same basis (bill + change)
    revenue: np.ndarray           # [d]
    notes: list[str]


def _target_cpt(h: History, target: int, model: int, move: Move, notes: list[str], scen: str) -> tuple[np.ndarray, float]:
    """Cost per token of ``target`` vendor serving ``model``: the day's measurement where there is
    one, else the period's; estimated from the vendor's overall cost per token when that model was
    never measured on it; else the move's assumed usd_per_mtok; else NaN (move skipped)."""
    T, C = h.tokens, h.cost
    day = np.divide(C[:, target, model], T[:, target, model], out=np.full(len(h.dates), np.nan),
                    where=T[:, target, model] > 0)
    name_v, name_m = h.vendors[target], h.models[model]
    if T[:, target, model].sum() > 0:
        period = C[:, target, model].sum() / T[:, target, model].sum()
    elif name_m in move.usd_per_mtok:
        period = move.usd_per_mtok[name_m] / 1e6
        notes.append(f"{scen}: {name_v} never served {name_m}; assumed ${move.usd_per_mtok[name_m]}/Mtok (scenario file)")
    elif T[:, target].sum() > 0:
        # kappa_v * r_m: the fleet's relative cost of this model, scaled to the vendor's own mix
        r = np.divide(C.sum(axis=(0, 1)), T.sum(axis=(0, 1)), out=np.full(len(h.models), np.nan),
                      where=T.sum(axis=(0, 1)) > 0)
        w = T[:, target].sum(axis=0) / T[:, target].sum()
        own = C[:, target].sum() / T[:, target].sum()
        denom = float(np.nansum(w * r))
        period = own / denom * r[model] if denom > 0 and not math.isnan(r[model]) else own
        notes.append(f"{scen}: {name_v} never served {name_m}; estimated {period * 1e6:.4f} USD/Mtok from its "
                     f"overall cost per token and the fleet's relative cost of {name_m}")
    else:
        notes.append(f"{scen}: {name_v} served no tokens in the history and no usd_per_mtok is given for "
                     f"{name_m}: that part of the move is skipped")
        return day, float("nan")
    return np.where(np.isnan(day), period, day), float(period)


def transform(h: History, s: Scenario) -> Transformed:
    """The scenario's daily loss with its mix and price changes in effect on every day of history."""
    notes: list[str] = []
    T, C, R = h.tokens.copy(), h.cost.copy(), h.revenue.copy()
    # cost components per (day, vendor, model): electricity, rented hardware, owned hardware
    comp = C[:, :, :, None] * h.composition[:, :, None, :]
    vi = {v: i for i, v in enumerate(h.vendors)}
    for mv in s.moves:
        if mv.target not in vi:
            if not mv.usd_per_mtok:
                notes.append(f"{s.name}: vendor '{mv.target}' served no tokens in the history and the move gives "
                             f"no usd_per_mtok: move skipped")
                continue
            notes.append(f"{s.name}: vendor '{mv.target}' not in the history; its cost split is assumed "
                         f"like the fleet's")
        missing = [a for a in mv.sources if a not in vi]
        if missing:
            notes.append(f"{s.name}: vendor(s) {', '.join(missing)} served no tokens in the history: nothing to move")
        for m in range(len(h.models)):
            sources = [vi[a] for a in mv.sources if a in vi and h.tokens[:, vi[a], m].any()]
            if not sources or mv.share == 0:
                continue
            if mv.target in vi:
                b = vi[mv.target]
                cpt, period = _target_cpt(h, b, m, mv, notes, s.name)
                b_comp = h.composition[:, b]
            else:
                name_m = h.models[m]
                if name_m not in mv.usd_per_mtok:
                    notes.append(f"{s.name}: no usd_per_mtok for {name_m} on '{mv.target}': its part of the move is skipped")
                    continue
                cpt = np.full(len(h.dates), mv.usd_per_mtok[name_m] / 1e6)
                period = float(cpt[0])
                tot = comp.sum(axis=2)  # [d, v, 3]
                tot = tot.sum(axis=1)   # [d, 3]
                b_comp = np.divide(tot, tot.sum(axis=1, keepdims=True), out=np.tile([1.0, 0, 0], (len(h.dates), 1)),
                                   where=tot.sum(axis=1, keepdims=True) > 0)
            if math.isnan(period):
                continue
            for a in sources:
                x = mv.share * T[:, a, m]
                comp[:, a, m] *= (1.0 - mv.share)
                added = x * cpt
                if mv.target in vi:
                    b = vi[mv.target]
                    comp[:, b, m] += added[:, None] * b_comp
                    T[:, b, m] += x
                    T[:, a, m] -= x
                    R[:, b, m] += mv.share * R[:, a, m]  # revenue follows the tokens (it is per model and tier)
                    R[:, a, m] *= (1.0 - mv.share)
                else:
                    # a vendor absent from the history: book the moved cost on the source row, whose
                    # tokens and revenue stay put (only the totals matter)
                    comp[:, a, m] += added[:, None] * b_comp
    f = s.prices
    factors = np.array([f.get("electricity", 1.0), f.get("rental_hardware", 1.0), f.get("owned_hardware", 1.0)])
    cost_s = (comp * factors).sum(axis=(1, 2, 3))
    rev_s = R.sum(axis=(1, 2)) * f.get("revenue", 1.0)
    cost_0 = h.cost.sum(axis=(1, 2))
    rev_0 = h.revenue.sum(axis=(1, 2))
    adjusted = h.loss + (cost_s - cost_0) - (rev_s - rev_0)
    return Transformed(adjusted, h.bill + (cost_s - cost_0), rev_s, notes)


def volume_factor(s: Scenario, start: dt.date | None, day: dt.date) -> float:
    if not s.extra_growth_per_week:
        return 1.0
    if start is None:
        return 1.0
    weeks = max(0, (day - start).days) / 7.0
    return (1.0 + s.extra_growth_per_week) ** weeks if day >= start else 1.0


def in_effect(start: dt.date | None, day: dt.date) -> bool:
    return start is None or day >= start


# ---------------------------------------------------------------------------------------------
# forecasting
# ---------------------------------------------------------------------------------------------

@dataclass
class SeriesForecast:
    mean: np.ndarray
    lo: dict[int, np.ndarray]
    hi: dict[int, np.ndarray]
    model: str
    backtest_mape: float          # percent
    backtest_mase: float
    backtest_days: int
    interval_scale: float = 1.0   # how much the model's intervals were widened to match its backtest errors


# the least daily history that can give prediction intervals (a naive model needs two points) and a
# backtest (fit on the first days, score on at least one held-out day)
MIN_DAYS_FOR_INTERVALS = 2
MIN_DAYS_FOR_BACKTEST = 4


def _fit_predict(y: np.ndarray, start: dt.date, h: int, season: int) -> tuple[dict, str]:
    """Fit the first model of the ladder that works on ``y``; forecast ``h`` days with intervals."""
    from statsforecast import StatsForecast
    from statsforecast.models import AutoETS, Naive

    n = len(y)
    df = pd.DataFrame({"unique_id": "loss", "ds": pd.date_range(start, periods=n, freq="D"), "y": y.astype(float)})
    ladder = []
    if season > 1 and n >= 2 * season + 2:
        ladder.append((AutoETS(season_length=season), f"season {season}"))
    if n >= 8:
        ladder.append((AutoETS(season_length=1), "no season"))
    if n >= MIN_DAYS_FOR_INTERVALS:
        ladder.append((Naive(), ""))
    for model, label in ladder:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                sf = StatsForecast(models=[model], freq="D", n_jobs=1)
                sf.fit(df=df)
                fc = sf.predict(h=h, level=list(LEVELS))
            alias = str(model)
            out = {"mean": fc[alias].to_numpy(float)}
            for lv in LEVELS:
                out[f"lo{lv}"] = fc[f"{alias}-lo-{lv}"].to_numpy(float)
                out[f"hi{lv}"] = fc[f"{alias}-hi-{lv}"].to_numpy(float)
            if not all(np.isfinite(v).all() for v in out.values()):
                raise ValueError("non-finite forecast")
            name = alias
            fitted = getattr(sf, "fitted_", None)
            if alias == "AutoETS" and fitted is not None:
                name = f"AutoETS {fitted[0, 0].model_.get('method', '')}".strip()
            return out, f"{name} ({label})" if label else name
        except Exception:  # noqa: BLE001 - try the next, simpler model
            continue
    last = float(y[-1]) if n else 0.0
    nan = np.full(h, np.nan)
    return {"mean": np.full(h, last), **{f"lo{lv}": nan for lv in LEVELS},
            **{f"hi{lv}": nan for lv in LEVELS}}, "last value (history too short for intervals)"


def forecast_series(y: np.ndarray, first_day: dt.date, h: int, cfg: ForecastConfig) -> SeriesForecast:
    """Forecast ``h`` days after ``y`` (daily, starting ``first_day``), with a backtest on held-out days."""
    y = np.asarray(y, dtype=float)
    n = len(y)
    # hold out backtest_days, but leave the training part long enough for the model the full
    # history gets (a seasonal one needs 2 seasons + 2 days), so that the backtest scores that model
    min_train = 2 * cfg.season_length + 2 if cfg.season_length > 1 else 8
    if n - cfg.backtest_days >= min_train:
        hold = cfg.backtest_days
    elif n - min_train >= max(1, cfg.backtest_days // 2):
        hold = n - min_train
    else:
        hold = max(1, n // 3)
    mape = mase = float("nan")
    scale = 1.0
    if n >= MIN_DAYS_FOR_BACKTEST and hold >= 1:
        train, test = y[:-hold], y[-hold:]
        bt, _ = _fit_predict(train, first_day, hold, cfg.season_length)
        err = bt["mean"] - test
        nz = np.abs(test) > 1e-9
        if nz.any():
            mape = float(np.mean(np.abs(err[nz]) / np.abs(test[nz])) * 100.0)
        s = cfg.season_length if len(train) > cfg.season_length else 1
        scale_mae = np.mean(np.abs(train[s:] - train[:-s])) if len(train) > s else float("nan")
        if scale_mae and np.isfinite(scale_mae) and scale_mae > 0:
            mase = float(np.mean(np.abs(err)) / scale_mae)
        scale = interval_scale(err, bt["lo80"], bt["hi80"])
    else:
        hold = 0
    out, name = _fit_predict(y, first_day, h, cfg.season_length)
    mean = out["mean"]
    # widen (never narrow) by what the backtest showed, around the mean, so the bands keep nesting
    lo = {lv: mean - scale * np.maximum(mean - out[f"lo{lv}"], 0.0) for lv in LEVELS}
    hi = {lv: mean + scale * np.maximum(out[f"hi{lv}"] - mean, 0.0) for lv in LEVELS}
    # nesting guard (intervals from one model always nest; kept in case a model misbehaves)
    lo[95] = np.minimum(lo[95], lo[80])
    hi[95] = np.maximum(hi[95], hi[80])
    return SeriesForecast(mean, lo, hi, name, mape, mase, hold, scale)


def interval_scale(err: np.ndarray, lo80: np.ndarray, hi80: np.ndarray) -> float:
    """Factor (>= 1) by which a model's prediction intervals must widen to match its backtest.

    A model's intervals only carry the noise it saw in sample; on a smooth simulated history they
    come out a fraction of a percent wide, while the same model misses held-out days by more. Each
    backtest error is divided by the standard deviation the model's own 80 % interval implies for
    that day; if the root mean square of those standardised errors exceeds 1, the intervals were too
    narrow by that factor, and every forecast interval is widened by it (a variance-inflation
    calibration; with a 14-day backtest it is a rough estimate, so it only ever widens)."""
    sd = (np.asarray(hi80, float) - np.asarray(lo80, float)) / (2 * Z80)
    ok = np.isfinite(sd) & (sd > 0) & np.isfinite(err)
    if not ok.any():
        return 1.0
    z = np.asarray(err, float)[ok] / sd[ok]
    return max(1.0, float(np.sqrt(np.mean(z * z))))


def horizon(last_day: dt.date, cfg: ForecastConfig) -> tuple[list[dt.date], list[dt.date]]:
    """Forecast days (after the last day of history, through the end of the monthly horizon and
    at least ``min_horizon_days``) and the first day of each forecast month."""
    m0 = (last_day + dt.timedelta(days=1)).replace(day=1)
    months = []
    y, m = m0.year, m0.month
    for _ in range(cfg.horizon_months):
        months.append(dt.date(y, m, 1))
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    end_months = dt.date(y, m, 1) - dt.timedelta(days=1)
    end = max(end_months, last_day + dt.timedelta(days=cfg.min_horizon_days))
    days = [last_day + dt.timedelta(days=i) for i in range(1, (end - last_day).days + 1)]
    return days, months


def _month_end(d: dt.date) -> dt.date:
    nxt = dt.date(d.year + (d.month == 12), 1 if d.month == 12 else d.month + 1, 1)
    return nxt - dt.timedelta(days=1)


def build_loss_forecast(h: History, cfg: ForecastConfig, scenarios: list[Scenario]) -> tuple[pd.DataFrame, dict]:
    """Rows of marts.fct_loss_forecast for every scenario (daily and monthly, history and forecast)."""
    days, months = horizon(h.last_day, cfg)
    H = len(days)
    base = forecast_series(h.loss, h.dates[0], H, cfg)
    rows: list[dict] = []
    summary: dict[str, Any] = {"history_days": len(h.dates), "first_day": str(h.dates[0]),
                               "last_day": str(h.last_day), "horizon_days": H, "scenarios": {}}
    for s in scenarios:
        start = s.start_date(h.last_day)
        tr = transform(h, s)
        fc = forecast_series(tr.adjusted_loss, h.dates[0], H, cfg) if s.changes_unit_economics else base
        notes = "; ".join(dict.fromkeys(tr.notes))
        desc = s.description
        daily = []
        for i, d in enumerate(h.dates):
            v = (tr.adjusted_loss[i] * volume_factor(s, start, d)) if in_effect(start, d) else h.loss[i]
            daily.append({"period_start": d, "kind": "history", "loss_usd": float(v), "interval_scale": None,
                          **{f"{b}{lv}_usd": None for b in ("lo", "hi") for lv in LEVELS}})
        for i, d in enumerate(days):
            src = fc if in_effect(start, d) else base
            k = volume_factor(s, start, d) if in_effect(start, d) else 1.0
            daily.append({"period_start": d, "kind": "forecast", "loss_usd": float(src.mean[i] * k),
                          "interval_scale": src.interval_scale,
                          **{f"lo{lv}_usd": float(src.lo[lv][i] * k) for lv in LEVELS},
                          **{f"hi{lv}_usd": float(src.hi[lv][i] * k) for lv in LEVELS}})
        # a scenario that starts after history mixes two models: name both
        mixed = start is not None and start > h.last_day + dt.timedelta(days=1) and s.changes_unit_economics
        model = f"{base.model} before {start}, {fc.model} after" if mixed and fc.model != base.model else fc.model
        bt = fc  # the backtest scores the scenario's own series
        common = {"scenario": s.name, "backtest_days": bt.backtest_days, "model": model, "description": desc,
                  "notes": notes}
        for r in daily:
            fcst = r["kind"] == "forecast"
            rows.append({**common, **r, "grain": "day", "period_end": r["period_start"], "days": 1,
                         "forecast_days": int(fcst),
                         "backtest_mape": bt.backtest_mape if fcst else None,
                         "backtest_mase": bt.backtest_mase if fcst else None})
        # months: every calendar month touched by history or forecast days
        by_month: dict[dt.date, list[dict]] = {}
        for r in daily:
            by_month.setdefault(r["period_start"].replace(day=1), []).append(r)
        for m0, rs in sorted(by_month.items()):
            nf = sum(r["kind"] == "forecast" for r in rs)
            if nf == 0 and m0 not in months:
                kind = "history"
            elif m0 in months:
                kind = "forecast"
            else:
                continue
            tot = sum(r["loss_usd"] for r in rs)
            hist_part = sum(r["loss_usd"] for r in rs if r["kind"] == "history")
            row = {**common, "grain": "month", "period_start": m0, "period_end": min(_month_end(m0), rs[-1]["period_start"]),
                   "kind": kind, "loss_usd": float(tot), "days": len(rs), "forecast_days": nf,
                   "interval_scale": (max(r["interval_scale"] for r in rs if r["kind"] == "forecast")
                                      if kind == "forecast" else None),
                   "backtest_mape": bt.backtest_mape if kind == "forecast" else None,
                   "backtest_mase": bt.backtest_mase if kind == "forecast" else None}
            for b in ("lo", "hi"):
                for lv in LEVELS:
                    row[f"{b}{lv}_usd"] = (float(hist_part + sum(r[f"{b}{lv}_usd"] for r in rs if r["kind"] == "forecast"))
                                           if kind == "forecast" else None)
            rows.append(row)
        summary["scenarios"][s.name] = {
            "model": model, "backtest_mape_pct": bt.backtest_mape, "backtest_mase": bt.backtest_mase,
            "interval_scale": fc.interval_scale,
            "start": str(start) if start else None,
            "next_12_months_loss_usd": float(sum(r["loss_usd"] for r in daily if r["kind"] == "forecast"
                                                 and r["period_start"] <= _month_end(months[-1]))),
            "notes": notes,
        }
    df = pd.DataFrame(rows, columns=FORECAST_COLUMNS)
    return df, summary


# ---------------------------------------------------------------------------------------------
# projection to fleet scale
# ---------------------------------------------------------------------------------------------

def build_fleet_scale_projection(h: History, cfg: ForecastConfig, scenarios: list[Scenario],
                                 scale: FleetScale, window_days: int = 28) -> pd.DataFrame:
    """Each scenario's relative change in annual inference cost and revenue (measured on the
    simulated fleet over the last ``window_days`` of history, changes fully in effect), applied
    to the public annual figures for the share of the projection year (the 365 days after the
    history) the change is in effect; other costs (training, staff) held fixed."""
    w = min(window_days, len(h.dates))
    sl = slice(len(h.dates) - w, len(h.dates))
    bill0 = float(h.bill[sl].sum())
    rev0 = float(h.revenue[sl].sum())
    year = [h.last_day + dt.timedelta(days=i) for i in range(1, 366)]
    rows = []
    for s in scenarios:
        tr = transform(h, s)
        cost_ratio = float(tr.cost[sl].sum()) / bill0 if bill0 > 0 else 1.0
        rev_ratio = float(tr.revenue[sl].sum()) / rev0 if rev0 > 0 else 1.0
        start = s.start_date(h.last_day)
        eff = np.array([in_effect(start, d) for d in year])
        vol = np.array([volume_factor(s, start, d) for d in year])
        cost_mult = float(np.mean(np.where(eff, cost_ratio * vol, 1.0)))
        rev_mult = float(np.mean(np.where(eff, rev_ratio * vol, 1.0)))
        cost = scale.annual_inference_cost_usd * cost_mult
        rev = scale.annual_revenue_usd * rev_mult
        loss = cost + scale.annual_other_cost_usd - rev
        assumptions = {
            "method": "public annual figure x (scenario / current) measured on the simulated fleet, "
                      "averaged over the projection year (1 before the scenario starts)",
            "measured_window": f"{h.dates[sl][0]}..{h.last_day} ({w} days)",
            "sim_fleet_bill_usd": round(bill0, 2), "sim_revenue_usd": round(rev0, 2),
            "sim_to_public_cost_scale": scale.annual_inference_cost_usd / (bill0 * 365.0 / w) if bill0 else None,
            "sim_to_public_revenue_scale": scale.annual_revenue_usd / (rev0 * 365.0 / w) if rev0 else None,
            "projection_year": f"{year[0]}..{year[-1]}", "scenario_start": str(start) if start else "always",
            "extra_growth_per_week": s.extra_growth_per_week,
            "caveat": "the public fleet's chip mix and prices are not the simulated fleet's; ratios carry the "
                      "simulated fleet's mix and unit economics",
            "source": scale.source, "notes": tr.notes,
        }
        rows.append({"scenario": s.name, "annual_revenue_usd": rev, "annual_inference_cost_usd": cost,
                     "annual_other_cost_usd": scale.annual_other_cost_usd, "annual_operating_loss_usd": loss,
                     "inference_cost_ratio": cost_mult, "revenue_ratio": rev_mult,
                     "share_of_year_in_effect": float(eff.mean()), "assumptions": json.dumps(assumptions)})
    df = pd.DataFrame(rows)
    cur = float(df.loc[df.scenario == "current", "annual_operating_loss_usd"].iloc[0])
    df["delta_vs_current_usd"] = df["annual_operating_loss_usd"] - cur
    return df[PROJECTION_COLUMNS]


# ---------------------------------------------------------------------------------------------
# tables
# ---------------------------------------------------------------------------------------------

def write_tables(con: duckdb.DuckDBPyConnection, forecast: pd.DataFrame, projection: pd.DataFrame) -> None:
    con.execute("create schema if not exists marts")
    con.execute("begin")
    try:
        con.register("fc_df", forecast)
        con.execute("""create or replace table marts.fct_loss_forecast as
            select cast(scenario as varchar) as scenario, cast(grain as varchar) as grain,
                   cast(period_start as date) as period_start, cast(period_end as date) as period_end,
                   cast(kind as varchar) as kind, cast(loss_usd as double) as loss_usd,
                   cast(lo80_usd as double) as lo80_usd, cast(hi80_usd as double) as hi80_usd,
                   cast(lo95_usd as double) as lo95_usd, cast(hi95_usd as double) as hi95_usd,
                   cast(backtest_mape as double) as backtest_mape, cast(backtest_mase as double) as backtest_mase,
                   cast(backtest_days as integer) as backtest_days,
                   cast(interval_scale as double) as interval_scale, cast(model as varchar) as model,
                   cast(days as integer) as days, cast(forecast_days as integer) as forecast_days,
                   cast(description as varchar) as description, cast(notes as varchar) as notes
            from fc_df order by scenario, grain, period_start""")
        con.unregister("fc_df")
        con.register("pj_df", projection)
        con.execute("""create or replace table marts.fct_fleet_scale_projection as
            select cast(scenario as varchar) as scenario, cast(annual_revenue_usd as double) as annual_revenue_usd,
                   cast(annual_inference_cost_usd as double) as annual_inference_cost_usd,
                   cast(annual_other_cost_usd as double) as annual_other_cost_usd,
                   cast(annual_operating_loss_usd as double) as annual_operating_loss_usd,
                   cast(delta_vs_current_usd as double) as delta_vs_current_usd,
                   cast(inference_cost_ratio as double) as inference_cost_ratio,
                   cast(revenue_ratio as double) as revenue_ratio,
                   cast(share_of_year_in_effect as double) as share_of_year_in_effect,
                   cast(assumptions as varchar) as assumptions
            from pj_df""")
        con.unregister("pj_df")
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise


def run_forecast(con: duckdb.DuckDBPyConnection, scenarios_path: Path | str | None = None) -> dict:
    """Load scenarios and history, forecast, project, write both tables; returns a summary."""
    cfg, scenarios, scale = load_scenarios(scenarios_path)
    h = load_history(con)
    fc, summary = build_loss_forecast(h, cfg, scenarios)
    pj = build_fleet_scale_projection(h, cfg, scenarios, scale)
    write_tables(con, fc, pj)
    summary["rows"] = len(fc)
    summary["projection"] = {r.scenario: {"annual_operating_loss_usd": r.annual_operating_loss_usd,
                                          "delta_vs_current_usd": r.delta_vs_current_usd}
                             for r in pj.itertuples()}
    return summary
