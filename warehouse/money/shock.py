"""A history with shocks, to measure forecast coverage where it matters.

A simulated history is smooth; a real one has a traffic drop (an outage, a lost customer) and a
price change (a rental renegotiated). :func:`apply_shock` injects both into a History loaded
from the marts:

* from ``drop_day`` (days after the first day of history) for ``drop_days`` days, traffic falls by
  ``traffic_drop``: tokens and revenue scale by (1 - traffic_drop), and so does the electricity part
  of the cost (the devices stay rented or owned, their hardware cost does not fall);
* from ``price_day`` on, rented hardware costs ``rental_price_factor`` times as much.

The fleet bill and the daily loss are recomputed from those parts (loss + change in cost - change in
revenue), so the shocked history is what the P&L would have shown.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from warehouse.money.history import History


@dataclass(frozen=True)
class Shock:
    traffic_drop: float = 0.4        # share of traffic lost during the drop
    drop_day: int | None = None      # first day of the drop, from the first day of history (None: half-way)
    drop_days: int = 5               # how long the drop lasts (days)
    rental_price_factor: float = 1.25  # rented hardware x this from price_day on
    price_day: int | None = None     # None: 70 % of the way through the history


def apply_shock(h: History, shock: Shock) -> History:
    """A copy of ``h`` with the shock in it (see the module docstring)."""
    if not 0.0 <= shock.traffic_drop < 1.0 or shock.rental_price_factor < 0:
        raise ValueError(f"shock out of range: {shock}")
    n = len(h.dates)
    drop_day = n // 2 if shock.drop_day is None else shock.drop_day
    price_day = int(0.7 * n) if shock.price_day is None else shock.price_day
    shock = replace(shock, drop_day=drop_day, price_day=price_day)
    day = np.arange(n)
    traffic = np.where((day >= shock.drop_day) & (day < shock.drop_day + shock.drop_days), 1.0 - shock.traffic_drop, 1.0)
    rental = np.where(day >= shock.price_day, shock.rental_price_factor, 1.0)
    # each (day, vendor, model) cost in its parts: electricity, rented hardware, owned hardware
    parts = h.cost[:, :, :, None] * h.composition[:, :, None, :]
    parts = parts * np.stack([traffic, rental, np.ones(n)], axis=1)[:, None, None, :]
    cost = parts.sum(axis=3)
    revenue = h.revenue * traffic[:, None, None]
    tokens = h.tokens * traffic[:, None, None]
    d_cost = cost.sum(axis=(1, 2)) - h.cost.sum(axis=(1, 2))
    d_rev = revenue.sum(axis=(1, 2)) - h.revenue.sum(axis=(1, 2))
    vendor_parts = parts.sum(axis=2)                           # [d, v, 3]
    tot = vendor_parts.sum(axis=2, keepdims=True)
    composition = np.divide(vendor_parts, tot, out=h.composition.copy(), where=tot > 0)
    # the bill's unallocated part (idle capacity without requests) is hardware and energy too: it
    # moves with the allocated cost in proportion, so the bill scales by the same daily factor
    alloc0 = h.cost.sum(axis=(1, 2))
    factor = np.divide(alloc0 + d_cost, alloc0, out=np.ones(n), where=alloc0 > 0)
    bill = h.bill * factor
    loss = h.loss + (bill - h.bill) - d_rev
    return replace(h, loss=loss, bill=bill, tokens=tokens, cost=cost, revenue=revenue, composition=composition)
