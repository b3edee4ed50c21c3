"""The history a loss forecast starts from, and what a scenario does to it.

``load_history(con)`` reads the marts: the daily operating loss of the whole fleet
(``marts.fct_pnl_daily``, vendor 'all': fleet bill - revenue); tokens, allocated cost and revenue
per (day, vendor, model) from ``marts.fct_cost_per_token_daily``; each vendor-day's cost split into
electricity, rented hardware and owned hardware from ``marts.fct_device_energy_daily`` and
``ref.chip_costs``. ``transform(h, scenario)`` moves a share of tokens between vendors (the moved
tokens cost the target's measured cost per token for the same model) and scales prices; the
scenario's daily loss = the P&L loss + (scenario cost - allocated cost) - (scenario revenue -
revenue). docs/money.md explains the method.
"""
from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd

from warehouse.money.scenarios import Move, Scenario

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


def scenario_series(h: History, s):
    """The daily series a scenario is forecast on: the P&L loss, or the loss with the scenario's
    mix and price changes in effect on every day (its volume factor applies after the forecast)."""
    return transform(h, s).adjusted_loss if s.changes_unit_economics else h.loss
