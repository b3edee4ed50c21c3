"""Each scenario's effect at fleet scale: the relative change in annual inference cost and
revenue measured on the simulated fleet, applied to public annual figures (scenarios.yaml
``fleet_scale``), for the share of the projection year the change is in effect.
"""
from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd

from warehouse.money.history import History, in_effect, transform, volume_factor
from warehouse.money.scenarios import FleetScale, ForecastConfig, Scenario

PROJECTION_COLUMNS = [
    "scenario", "annual_revenue_usd", "annual_inference_cost_usd", "annual_other_cost_usd",
    "annual_operating_loss_usd", "delta_vs_current_usd", "inference_cost_ratio", "revenue_ratio",
    "share_of_year_in_effect", "assumptions",
]


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
