"""Prices and assumptions as data: load ``prices.yaml``, validate it, write ``ref`` tables.

A wrong file raises :class:`PriceError` naming the file and the field; nothing downstream runs
on it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import yaml

PRICES_FILE = Path(__file__).parent / "prices.yaml"


class PriceError(ValueError):
    pass


def _num(src: str, where: str, v: Any, lo: float = 0.0, hi: float | None = None) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise PriceError(f"{src}: field '{where}' must be a number, got {v!r}")
    if v < lo or (hi is not None and v > hi):
        raise PriceError(f"{src}: field '{where}' = {v!r} is outside [{lo}, {hi if hi is not None else 'inf'}]")
    return float(v)


def load_prices(path: Path | str | None = None) -> dict:
    """Parse and validate a price file; returns normalised rows for the ``ref`` tables."""
    path = Path(path or PRICES_FILE)
    src = str(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise PriceError(f"{src}: file not found") from None
    except yaml.YAMLError as exc:
        raise PriceError(f"{src}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise PriceError(f"{src}: top level must be a mapping")
    for key in ("chips", "electricity", "sites", "revenue"):
        if key not in raw:
            raise PriceError(f"{src}: missing field '{key}'")
    if raw.get("currency", "USD") != "USD":
        raise PriceError(f"{src}: field 'currency' must be USD")
    chips = []
    for cid, c in (raw["chips"] or {}).items():
        w = f"chips.{cid}"
        if not isinstance(c, dict):
            raise PriceError(f"{src}: field '{w}' must be a mapping")
        basis = c.get("basis")
        if basis == "rental":
            hourly = _num(src, f"{w}.usd_per_device_hour", c.get("usd_per_device_hour"), 0, 1000)
            capex = years = design = units = None
        elif basis == "ownership":
            capex = _num(src, f"{w}.capex_usd", c.get("capex_usd"), 0, 1e7)
            years = _num(src, f"{w}.depreciation_years", c.get("depreciation_years"), 0.25, 30)
            design = _num(src, f"{w}.design_cost_usd", c.get("design_cost_usd", 0), 0)
            units = _num(src, f"{w}.design_units", c.get("design_units", 1), 1)
            opex = _num(src, f"{w}.opex_usd_per_device_hour", c.get("opex_usd_per_device_hour", 0), 0, 1000)
            hourly = (capex + design / units) / (years * 8760.0) + opex
        else:
            raise PriceError(f"{src}: field '{w}.basis' must be rental or ownership, got {basis!r}")
        if not c.get("source"):
            raise PriceError(f"{src}: field '{w}.source' is required (where the number comes from)")
        chips.append((cid, basis, hourly, capex, years, design, units, str(c["source"])))
    el = raw["electricity"]
    default_kwh = _num(src, "electricity.default_usd_per_kwh", el.get("default_usd_per_kwh"), 0, 5)
    tod = []
    for i, r in enumerate(el.get("time_of_day") or []):
        w = f"electricity.time_of_day[{i}]"
        a = _num(src, f"{w}.from_hour", r.get("from_hour"), 0, 24)
        b = _num(src, f"{w}.to_hour", r.get("to_hour"), 0, 24)
        if b <= a:
            raise PriceError(f"{src}: field '{w}.to_hour' must be after from_hour")
        tod.append((int(a), int(b), _num(src, f"{w}.multiplier", r.get("multiplier"), 0, 20)))
    sites = []
    for name, s in (raw["sites"] or {}).items():
        w = f"sites.{name}"
        sites.append((name, _num(src, f"{w}.pue", s.get("pue"), 1.0, 3.0),
                      _num(src, f"{w}.usd_per_kwh", s.get("usd_per_kwh", default_kwh), 0, 5), str(s.get("source", ""))))
    if "default" not in {s[0] for s in sites}:
        raise PriceError(f"{src}: field 'sites.default' is required")
    rev = raw["revenue"]
    api = []
    for model, r in (rev.get("api") or {}).items():
        w = f"revenue.api.{model}"
        api.append((model, _num(src, f"{w}.usd_per_mtok_input", r.get("usd_per_mtok_input"), 0, 1000),
                    _num(src, f"{w}.usd_per_mtok_output", r.get("usd_per_mtok_output"), 0, 1000)))
    sub = rev.get("subscription") or {}
    subscription = (_num(src, "revenue.subscription.monthly_fee_usd", sub.get("monthly_fee_usd", 0), 0, 10000),
                    _num(src, "revenue.subscription.subscribers", sub.get("subscribers", 0), 0))
    return {"chips": chips, "default_usd_per_kwh": default_kwh, "time_of_day": tod, "sites": sites,
            "api": api, "subscription": subscription, "source": src}


def write_ref_tables(con: duckdb.DuckDBPyConnection, prices: dict, node_sites: dict[str, str]) -> None:
    """Replace the ``ref`` tables from validated prices (and which site each node is in)."""
    con.execute("create schema if not exists ref")
    con.execute("begin")
    try:
        con.execute("""create or replace table ref.chip_costs (chip varchar primary key, basis varchar,
            hardware_usd_per_device_hour double, capex_usd double, depreciation_years double,
            design_cost_usd double, design_units double, source varchar)""")
        con.executemany("insert into ref.chip_costs values (?, ?, ?, ?, ?, ?, ?, ?)", prices["chips"])
        con.execute("""create or replace table ref.sites (site varchar primary key, pue double,
            usd_per_kwh double, source varchar)""")
        con.executemany("insert into ref.sites values (?, ?, ?, ?)", prices["sites"])
        con.execute("create or replace table ref.tariff_hours (hour integer primary key, multiplier double)")
        mult = [1.0] * 24
        for a, b, m in prices["time_of_day"]:
            for h in range(a, b):
                mult[h] = m
        con.executemany("insert into ref.tariff_hours values (?, ?)", list(enumerate(mult)))
        con.execute("""create or replace table ref.api_prices (model varchar primary key,
            usd_per_mtok_input double, usd_per_mtok_output double)""")
        if prices["api"]:
            con.executemany("insert into ref.api_prices values (?, ?, ?)", prices["api"])
        con.execute("""create or replace table ref.subscription (monthly_fee_usd double, subscribers double)""")
        con.execute("insert into ref.subscription values (?, ?)", list(prices["subscription"]))
        con.execute("create or replace table ref.node_sites (node varchar primary key, site varchar)")
        if node_sites:
            con.executemany("insert into ref.node_sites values (?, ?)", list(node_sites.items()))
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise
