"""Prices and assumptions as data: load ``prices.yaml``, validate it, write ``ref`` tables.

A wrong file raises :class:`PriceError` naming the file and the field (dotted path, e.g.
``chips.amd-mi300x.usd_per_device_hour``); nothing downstream runs on it. The Dagster ``prices``
asset reads the file named by ``TOKENWATT_PRICES`` (default: this package's ``prices.yaml``).

Checks: required fields present, numbers are numbers (not strings or booleans) within a sane
range (no negative prices), ``basis`` is ``rental`` or ``ownership``, every chip cost has a
``source``, no unknown field (a typo such as ``usd_per_device_hr`` would otherwise be silently
ignored), time-of-day tariff windows are whole UTC hours and do not overlap, ``sites.default``
exists.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import duckdb

from collectors import config
from collectors.config import load_yaml_mapping

PRICES_FILE = Path(__file__).parent / "prices.yaml"
PRICES_ENV = "TOKENWATT_PRICES"

_TOP = {"currency", "chips", "electricity", "sites", "revenue", "focus"}
_FOCUS = {"provider_name", "publisher_name", "invoice_issuer_name", "billing_account_id", "billing_account_name",
          "models"}
_MODEL_ID = {"developer", "family", "id", "version"}
#: the FOCUS names when a price file has no ``focus`` section
FOCUS_DEFAULTS = {"provider_name": "tokenwatt", "publisher_name": "tokenwatt", "invoice_issuer_name": "tokenwatt",
                  "billing_account_id": "tokenwatt-fleet", "billing_account_name": "tokenwatt inference fleet"}
_RENTAL = {"basis", "usd_per_device_hour", "source"}
_OWNERSHIP = {"basis", "capex_usd", "depreciation_years", "design_cost_usd", "design_units",
              "opex_usd_per_device_hour", "source"}
_ELECTRICITY = {"default_usd_per_kwh", "source", "time_of_day"}
_TOD = {"from_hour", "to_hour", "multiplier", "source"}
_SITE = {"pue", "usd_per_kwh", "source"}
_REVENUE = {"api", "subscription", "free"}
_API = {"usd_per_mtok_input", "usd_per_mtok_output", "source"}
_SUB = {"monthly_fee_usd", "subscribers", "source"}
_FREE = {"usd_per_mtok", "source"}


class PriceError(ValueError):
    """A price file that must not be used: the message names the file and the field."""


def prices_path(path: Path | str | None = None) -> Path:
    """The price file to use: ``path``, else ``$TOKENWATT_PRICES``, else the bundled one."""
    return Path(path or os.environ.get(PRICES_ENV) or PRICES_FILE)


def _num(src: str, where: str, v: Any, lo: float = 0.0, hi: float | None = None) -> float:
    """A finite number within [lo, hi] (collectors.config.number); NaN and Inf are refused."""
    if v is None:
        raise PriceError(f"{src}: missing field '{where}'")
    return config.number(src, where, v, lo=lo, hi=hi, error=PriceError)


def _map(src: str, where: str, v: Any, allowed: set[str] | None = None) -> dict:
    if v is None:
        raise PriceError(f"{src}: missing field '{where}'")
    if allowed is None:  # a mapping of names (chips, sites, models): any key
        allowed = v.keys() if isinstance(v, dict) else ()
    return config.fields(src, where, v, allowed, error=PriceError)


def _source(src: str, where: str, v: Any, required: bool) -> str:
    if v is None or v == "":
        if required:
            raise PriceError(f"{src}: missing field '{where}' (say where the number comes from)")
        return ""
    if not isinstance(v, str):
        raise PriceError(f"{src}: field '{where}' must be text, got {type(v).__name__} {v!r}")
    return v


def _chip(src: str, cid: str, c: Any) -> tuple:
    w = f"chips.{cid}"
    c = _map(src, w, c)
    basis = c.get("basis")
    if basis is None:
        raise PriceError(f"{src}: missing field '{w}.basis' (rental or ownership)")
    if basis == "rental":
        _map(src, w, c, _RENTAL)
        hourly = _num(src, f"{w}.usd_per_device_hour", c.get("usd_per_device_hour"), 0, 1000)
        capex = years = design = units = None
    elif basis == "ownership":
        _map(src, w, c, _OWNERSHIP)
        capex = _num(src, f"{w}.capex_usd", c.get("capex_usd"), 0, 1e7)
        years = _num(src, f"{w}.depreciation_years", c.get("depreciation_years"), 0.25, 30)
        design = _num(src, f"{w}.design_cost_usd", c.get("design_cost_usd", 0), 0, 1e12)
        units = _num(src, f"{w}.design_units", c.get("design_units", 1), 1, 1e10)
        opex = _num(src, f"{w}.opex_usd_per_device_hour", c.get("opex_usd_per_device_hour", 0), 0, 1000)
        hourly = (capex + design / units) / (years * 8760.0) + opex
    else:
        raise PriceError(f"{src}: field '{w}.basis' must be rental or ownership, got {basis!r}")
    source = _source(src, f"{w}.source", c.get("source"), required=True)
    return (cid, basis, hourly, capex, years, design, units, source)


def load_prices(path: Path | str | None = None) -> dict:
    """Parse and validate a price file; returns normalised rows for the ``ref`` tables."""
    path = prices_path(path)
    src = str(path)
    raw = load_yaml_mapping(path, PriceError)
    for key in ("chips", "electricity", "sites", "revenue"):
        if key not in raw:
            raise PriceError(f"{src}: missing field '{key}'")
    config.fields(src, "", raw, _TOP, error=PriceError)
    if raw.get("currency", "USD") != "USD":
        raise PriceError(f"{src}: field 'currency' must be USD, got {raw.get('currency')!r}")

    chips_raw = _map(src, "chips", raw["chips"])
    if not chips_raw:
        raise PriceError(f"{src}: field 'chips' must list at least one chip")
    chips = [_chip(src, str(cid), c) for cid, c in chips_raw.items()]

    el = _map(src, "electricity", raw["electricity"], _ELECTRICITY)
    default_kwh = _num(src, "electricity.default_usd_per_kwh", el.get("default_usd_per_kwh"), 0, 5)
    tod = []
    tod_raw = el.get("time_of_day") or []
    if not isinstance(tod_raw, list):
        raise PriceError(f"{src}: field 'electricity.time_of_day' must be a list")
    taken: dict[int, int] = {}
    for i, r in enumerate(tod_raw):
        w = f"electricity.time_of_day[{i}]"
        r = _map(src, w, r, _TOD)
        a = _num(src, f"{w}.from_hour", r.get("from_hour"), 0, 23)
        b = _num(src, f"{w}.to_hour", r.get("to_hour"), 1, 24)
        if a != int(a) or b != int(b):
            raise PriceError(f"{src}: field '{w}' hours must be whole UTC hours")
        if b <= a:
            raise PriceError(f"{src}: field '{w}.to_hour' must be after from_hour")
        for h in range(int(a), int(b)):
            if h in taken:
                raise PriceError(f"{src}: field '{w}' overlaps electricity.time_of_day[{taken[h]}] at hour {h}")
            taken[h] = i
        tod.append((int(a), int(b), _num(src, f"{w}.multiplier", r.get("multiplier"), 0, 20)))

    sites = []
    for name, s in _map(src, "sites", raw["sites"]).items():
        w = f"sites.{name}"
        s = _map(src, w, s, _SITE)
        sites.append((str(name), _num(src, f"{w}.pue", s.get("pue"), 1.0, 3.0),
                      _num(src, f"{w}.usd_per_kwh", s.get("usd_per_kwh", default_kwh), 0, 5),
                      _source(src, f"{w}.source", s.get("source"), required=False)))
    if "default" not in {s[0] for s in sites}:
        raise PriceError(f"{src}: missing field 'sites.default'")

    rev = _map(src, "revenue", raw["revenue"], _REVENUE)
    api = []
    for model, r in _map(src, "revenue.api", rev.get("api") or {}).items():
        w = f"revenue.api.{model}"
        r = _map(src, w, r, _API)
        api.append((str(model), _num(src, f"{w}.usd_per_mtok_input", r.get("usd_per_mtok_input"), 0, 1000),
                    _num(src, f"{w}.usd_per_mtok_output", r.get("usd_per_mtok_output"), 0, 1000)))
    sub = _map(src, "revenue.subscription", rev.get("subscription") or {}, _SUB)
    subscription = (_num(src, "revenue.subscription.monthly_fee_usd", sub.get("monthly_fee_usd", 0), 0, 10000),
                    _num(src, "revenue.subscription.subscribers", sub.get("subscribers", 0), 0, 1e10))
    free = _map(src, "revenue.free", rev.get("free") or {}, _FREE)
    _num(src, "revenue.free.usd_per_mtok", free.get("usd_per_mtok", 0.0), 0, 1000)
    return {"chips": chips, "default_usd_per_kwh": default_kwh, "time_of_day": tod, "sites": sites,
            "api": api, "subscription": subscription, "focus": _focus(src, raw.get("focus") or {}), "source": src}


def _focus(src: str, f: Any) -> dict:
    """The FOCUS export's names (provider, publisher, invoice issuer, billing account) and model identity."""
    f = _map(src, "focus", f, _FOCUS)
    out = {k: config.string(src, f"focus.{k}", f.get(k, v), error=PriceError) for k, v in FOCUS_DEFAULTS.items()}
    models = {}
    for model, m in _map(src, "focus.models", f.get("models") or {}).items():
        w = f"focus.models.{model}"
        m = config.fields(src, w, m, _MODEL_ID, required=_MODEL_ID, error=PriceError)
        models[str(model)] = {k: config.string(src, f"{w}.{k}", str(m[k]) if isinstance(m[k], (int, float))
                                               and not isinstance(m[k], bool) else m[k], error=PriceError)
                              for k in ("developer", "family", "id", "version")}
    out["models"] = models
    return out


def tariff_multipliers(prices: dict) -> list[float]:
    """The electricity multiplier for each UTC hour 0..23 (1.0 outside the time-of-day windows)."""
    mult = [1.0] * 24
    for a, b, m in prices["time_of_day"]:
        for h in range(a, b):
            mult[h] = m
    return mult


def phase_weights(chip: str) -> tuple[float, float]:
    """The attribution's prefill and decode power weights for ``chip`` (attribution.yaml), kept
    in ref.chip_costs beside the prices: the attribution splits a device's energy between the two
    phases with them where it cannot learn the power model, so they are part of a price version."""
    from warehouse.attribution.config import AttributionConfig

    return AttributionConfig.load().weights(chip)


def write_ref_tables(con: duckdb.DuckDBPyConnection, prices: dict, node_sites: dict[str, str]) -> None:
    """Replace the ``ref`` tables from validated prices (and which site each node is in)."""
    con.execute("create schema if not exists ref")
    con.execute("begin")
    try:
        con.execute("""create or replace table ref.chip_costs (chip varchar primary key, basis varchar,
            hardware_usd_per_device_hour double, capex_usd double, depreciation_years double,
            design_cost_usd double, design_units double, source varchar,
            prefill_power_weight double, decode_power_weight double)""")
        con.executemany("insert into ref.chip_costs values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        [(*c, *phase_weights(c[0])) for c in prices["chips"]])
        con.execute("""create or replace table ref.sites (site varchar primary key, pue double,
            usd_per_kwh double, source varchar)""")
        con.executemany("insert into ref.sites values (?, ?, ?, ?)", prices["sites"])
        con.execute("create or replace table ref.tariff_hours (hour integer primary key, multiplier double)")
        con.executemany("insert into ref.tariff_hours values (?, ?)", list(enumerate(tariff_multipliers(prices))))
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
