"""Export the fleet's cost as FinOps FOCUS 1.2 (Cost and Usage dataset) for AI inference: Parquet and/or CSV.

    tokenwatt export focus --home DIR --out FILE[.parquet|.csv] [--format parquet|csv|both]

One charge row per UTC day x replica (the resource) x model x task x language x tier x meter,
from the allocation basis (marts.fct_request_energy): the rows' BilledCost adds up to the fleet
bill (the allocation reconciles with it, marts.fct_cost_reconciliation). Following the FOCUS AI
model-identity appendix, each (chip, model) has two SKUs, SkuMeter "Input Tokens" (the prefill
phase's cost) and "Output Tokens" (the decode phase's; the attribution splits each request's
energy and device time between them), consumed in "Tokens" and priced per "1000000 Tokens"; SkuPriceDetails carries the model's identity (ModelDeveloper,
ModelFamily, ModelId, ModelVersion) from the price file's ``focus.models``.

Prices: a SkuPriceId is one price version of a SKU: the SKU plus a digest of the price inputs
that make its cost (the chip's ref.chip_costs row, the sites' PUE and tariffs, the time-of-day
multipliers); a change to any of them opens a new SkuPriceId. Its ListUnitPrice is the SKU's cost
per million tokens over every row of that version (one number per SkuPriceId), ContractedUnitPrice
the same, ListCost = ContractedCost = ListUnitPrice x PricingQuantity. BilledCost = EffectiveCost is
the row's allocated cost (it varies with the day's utilisation around the list rate; summed over a
SkuPriceId, ListCost equals BilledCost). There are no commitment discounts or capacity reservations
(those columns are present and null). ProviderName, PublisherName, InvoiceIssuerName and the billing
account come from the price file's ``focus`` section (the operator's names). Our own columns carry
the ``x_`` prefix (x_EnergyKwh, x_JoulesPerToken, x_Chip, x_Task, x_Language, x_Tier, ...).

The CSV writes every decimal positionally (never scientific notation), with the shortest digits
that read back to the same double, so ListUnitPrice x PricingQuantity = ListCost holds for a
reader exactly as in the Parquet file. ``tokenwatt check focus FILE`` (focus_check.py) checks the
arithmetic; the FinOps Foundation's ``focus-validator`` checks the rest (docs/money.md).
"""
from __future__ import annotations

import argparse
import csv
import datetime as dt
import hashlib
import json
import math
import sys
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from collectors.units import J_PER_KWH
from warehouse.footprint.focus_columns import FOOTPRINT_COLUMNS, footprint_columns, footprint_groups
from warehouse.money.prices import load_prices

FOCUS_VERSION = "1.2"
METERS = (("Input Tokens", "input"), ("Output Tokens", "output"))

# FOCUS 1.2 Cost and Usage columns (mandatory, conditional and recommended), in spec order
# (alphabetical), then ours. Type: s = string, d = decimal, t = UTC datetime.
FOCUS_COLUMNS: list[tuple[str, str]] = [
    ("AvailabilityZone", "s"), ("BilledCost", "d"), ("BillingAccountId", "s"), ("BillingAccountName", "s"),
    ("BillingAccountType", "s"), ("BillingCurrency", "s"), ("BillingPeriodEnd", "t"), ("BillingPeriodStart", "t"),
    ("CapacityReservationId", "s"), ("CapacityReservationStatus", "s"), ("ChargeCategory", "s"),
    ("ChargeClass", "s"), ("ChargeDescription", "s"), ("ChargeFrequency", "s"), ("ChargePeriodEnd", "t"),
    ("ChargePeriodStart", "t"), ("CommitmentDiscountCategory", "s"), ("CommitmentDiscountId", "s"),
    ("CommitmentDiscountName", "s"), ("CommitmentDiscountQuantity", "d"), ("CommitmentDiscountStatus", "s"),
    ("CommitmentDiscountType", "s"), ("CommitmentDiscountUnit", "s"), ("ConsumedQuantity", "d"),
    ("ConsumedUnit", "s"), ("ContractedCost", "d"), ("ContractedUnitPrice", "d"), ("EffectiveCost", "d"),
    ("InvoiceId", "s"), ("InvoiceIssuerName", "s"), ("ListCost", "d"), ("ListUnitPrice", "d"),
    ("PricingCategory", "s"), ("PricingCurrency", "s"), ("PricingCurrencyContractedUnitPrice", "d"),
    ("PricingCurrencyEffectiveCost", "d"), ("PricingCurrencyListUnitPrice", "d"), ("PricingQuantity", "d"),
    ("PricingUnit", "s"), ("ProviderName", "s"), ("PublisherName", "s"), ("RegionId", "s"), ("RegionName", "s"),
    ("ResourceId", "s"), ("ResourceName", "s"), ("ResourceType", "s"), ("ServiceCategory", "s"),
    ("ServiceName", "s"), ("ServiceSubcategory", "s"), ("SkuId", "s"), ("SkuMeter", "s"), ("SkuPriceDetails", "s"),
    ("SkuPriceId", "s"), ("SubAccountId", "s"), ("SubAccountName", "s"), ("SubAccountType", "s"), ("Tags", "s"),
]
EXTRA_COLUMNS: list[tuple[str, str]] = [
    ("x_Tokens", "i"), ("x_Requests", "i"), ("x_PhaseDeviceSeconds", "d"),
    ("x_EnergyKwh", "d"), ("x_ActiveEnergyKwh", "d"), ("x_JoulesPerToken", "d"), ("x_EnergyCost", "d"),
    ("x_HardwareCost", "d"), ("x_UsageCost", "d"), ("x_Chip", "s"), ("x_Vendor", "s"), ("x_Model", "s"),
    ("x_Task", "s"), ("x_Language", "s"), ("x_Tier", "s"), ("x_Node", "s"), ("x_Site", "s"), ("x_CostBasis", "s"),
] + FOOTPRINT_COLUMNS  # Wh, gCO2e and mL, full and accelerator-only boundary (warehouse/footprint/focus_columns.py)
COLUMNS = FOCUS_COLUMNS + EXTRA_COLUMNS
_ARROW = {"s": pa.string(), "d": pa.float64(), "i": pa.int64(), "t": pa.timestamp("ms", tz="UTC")}

_QUERY = """
with req as (
    select date, replica_id, node, chip, vendor, model, task, language, tier,
           count(*) as requests,
           sum(prompt_tokens) as input_tokens, sum(completion_tokens) as output_tokens,
           sum(prefill_device_s) as input_device_s, sum(decode_device_s) as output_device_s,
           sum(input_energy_j) as input_energy_j, sum(output_energy_j) as output_energy_j,
           sum(active_energy_j * input_share) as input_active_energy_j,
           sum(active_energy_j - active_energy_j * input_share) as output_active_energy_j,
           sum(input_cost_usd) as input_cost_usd, sum(output_cost_usd) as output_cost_usd,
           sum(energy_cost_usd * input_share) as input_energy_cost_usd,
           sum(energy_cost_usd - energy_cost_usd * input_share) as output_energy_cost_usd,
           sum(hardware_cost_usd * input_share) as input_hardware_cost_usd,
           sum(hardware_cost_usd - hardware_cost_usd * input_share) as output_hardware_cost_usd,
           sum(input_usage_cost_usd) as input_usage_cost_usd, sum(output_usage_cost_usd) as output_usage_cost_usd
    from marts.fct_request_energy
    group by all
)
select r.*, coalesce(ns.site, 'default') as site, cc.basis
from req as r
left join ref.node_sites as ns on ns.node = r.node
left join ref.chip_costs as cc on cc.chip = r.chip
order by r.date, r.replica_id, r.model, r.task, r.language, r.tier
"""


def _fmt_decimal(x) -> str:
    """A decimal for CSV: positional, shortest digits that read back to the same double."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return ""
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    # trim="0" keeps one digit after the point ("23787395.0"), so readers infer a decimal column
    s = np.format_float_positional(float(x), unique=True, trim="0")
    return "0.0" if s == "-0.0" else s


def _utc(d: dt.date) -> dt.datetime:
    return dt.datetime(d.year, d.month, d.day, tzinfo=dt.timezone.utc)


def _month(d: dt.date) -> tuple[dt.date, dt.date]:
    start = d.replace(day=1)
    end = dt.date(start.year + (start.month == 12), 1 if start.month == 12 else start.month + 1, 1)
    return start, end


def price_versions(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """Per chip: a digest of the price inputs its cost is made of (its ref.chip_costs row, every
    site's PUE and tariff, the time-of-day multipliers). Same inputs, same version."""
    common = json.dumps([con.execute("select site, pue, usd_per_kwh from ref.sites order by site").fetchall(),
                         con.execute("select hour, multiplier from ref.tariff_hours order by hour").fetchall()])
    out = {}
    for row in con.execute("""select chip, basis, hardware_usd_per_device_hour, prefill_power_weight,
                                     decode_power_weight from ref.chip_costs order by chip""").fetchall():
        out[row[0]] = hashlib.sha256(json.dumps([list(row), common]).encode()).hexdigest()[:12]
    return out


def _sku_details(model: str, identity: dict) -> str:
    m = identity.get(model) or {}
    return json.dumps({"ModelDeveloper": m.get("developer"), "ModelFamily": m.get("family"),
                       "ModelId": m.get("id", model), "ModelVersion": m.get("version")}, sort_keys=True)


def _charge(r: dict, meter: str, side: str, names: dict, versions: dict) -> dict:
    """One charge row (FOCUS columns and ours, prices filled in later) for one meter of a group."""
    day = r["date"]
    bp_start, bp_end = _month(day)
    tokens = int(r[f"{side}_tokens"] or 0)
    replica = r["replica_id"] or "unassigned"
    chip, model, task, vendor = r["chip"] or "unknown", r["model"] or "unknown", r["task"] or "unknown", r["vendor"]
    sku = f"{chip}/{model}/{side}-tokens"
    energy_j = float(r[f"{side}_energy_j"] or 0.0)
    cost = float(r[f"{side}_cost_usd"] or 0.0)
    null = dict.fromkeys(("AvailabilityZone", "CapacityReservationId", "CapacityReservationStatus", "ChargeClass",
                          "CommitmentDiscountCategory", "CommitmentDiscountId", "CommitmentDiscountName",
                          "CommitmentDiscountQuantity", "CommitmentDiscountStatus", "CommitmentDiscountType",
                          "CommitmentDiscountUnit", "InvoiceId"))  # InvoiceId: internal showback, not invoiced
    return {
        **null, "BilledCost": cost, "BillingAccountId": names["billing_account_id"],
        "BillingAccountName": names["billing_account_name"], "BillingAccountType": "Internal Fleet",
        "BillingCurrency": "USD", "BillingPeriodEnd": _utc(bp_end), "BillingPeriodStart": _utc(bp_start),
        "ChargeCategory": "Usage",
        "ChargeDescription": f"LLM inference {meter.lower()}, {model} {task} on {chip} (replica {replica})",
        "ChargeFrequency": "Usage-Based", "ChargePeriodEnd": _utc(day + dt.timedelta(days=1)),
        "ChargePeriodStart": _utc(day), "ConsumedQuantity": float(tokens), "ConsumedUnit": "Tokens",
        "EffectiveCost": cost, "InvoiceIssuerName": names["invoice_issuer_name"], "PricingCategory": "Standard",
        "PricingCurrency": "USD", "PricingCurrencyEffectiveCost": cost, "PricingQuantity": tokens / 1e6,
        "PricingUnit": "1000000 Tokens", "ProviderName": names["provider_name"],
        "PublisherName": names["publisher_name"], "RegionId": r["site"], "RegionName": r["site"],
        "ResourceId": replica, "ResourceName": replica, "ResourceType": "Inference Replica",
        "ServiceCategory": "AI and Machine Learning", "ServiceName": "LLM Inference",
        "ServiceSubcategory": "Generative AI", "SkuId": sku, "SkuMeter": meter,
        "SkuPriceDetails": _sku_details(model, names["models"]),
        "SkuPriceId": f"{sku}/v-{versions.get(chip, 'unpriced')}",
        "SubAccountId": r["node"] or "unknown", "SubAccountName": r["node"] or "unknown", "SubAccountType": "Node",
        "Tags": json.dumps({"vendor": vendor, "chip": chip, "model": model, "task": task,
                            "language": r["language"], "tier": r["tier"]}, sort_keys=True),
        "x_Tokens": tokens, "x_Requests": int(r["requests"]),
        "x_PhaseDeviceSeconds": float(r[f"{side}_device_s"] or 0.0),
        "x_EnergyKwh": energy_j / J_PER_KWH,
        "x_ActiveEnergyKwh": float(r[f"{side}_active_energy_j"] or 0.0) / J_PER_KWH,
        "x_JoulesPerToken": energy_j / tokens if tokens > 0 else None,
        "x_EnergyCost": float(r[f"{side}_energy_cost_usd"] or 0.0),
        "x_HardwareCost": float(r[f"{side}_hardware_cost_usd"] or 0.0),
        "x_UsageCost": float(r[f"{side}_usage_cost_usd"] or 0.0),
        "x_Chip": chip, "x_Vendor": vendor, "x_Model": model, "x_Task": task, "x_Language": r["language"],
        "x_Tier": r["tier"], "x_Node": r["node"], "x_Site": r["site"], "x_CostBasis": r["basis"],
    }


def _set_prices(rows: list[dict]) -> None:
    """One ListUnitPrice per SkuPriceId: the version's cost per million tokens over all its rows."""
    qty: dict[str, float] = {}
    cost: dict[str, float] = {}
    for r in rows:
        k = r["SkuPriceId"]
        qty[k] = qty.get(k, 0.0) + r["PricingQuantity"]
        cost[k] = cost.get(k, 0.0) + r["BilledCost"]
    for r in rows:
        k = r["SkuPriceId"]
        price = cost[k] / qty[k] if qty[k] > 0 else 0.0
        list_cost = price * r["PricingQuantity"]
        r.update({"ListUnitPrice": price, "ContractedUnitPrice": price, "PricingCurrencyListUnitPrice": price,
                  "PricingCurrencyContractedUnitPrice": price, "ListCost": list_cost, "ContractedCost": list_cost})


def focus_rows(con: duckdb.DuckDBPyConnection, names: dict | None = None) -> list[dict]:
    """The charge rows (FOCUS columns and ours) from an open warehouse; ``names``: the price file's
    ``focus`` section (default: the price file in use)."""
    names = names or load_prices()["focus"]
    versions = price_versions(con)
    footprint = footprint_groups(con)
    rows = []
    cur = con.execute(_QUERY)
    cols = [c[0] for c in cur.description]
    for rec in cur.fetchall():
        r = dict(zip(cols, rec))
        if r["date"] is None:
            continue
        for meter, side in METERS:
            if (r[f"{side}_tokens"] or 0) > 0 or (r[f"{side}_cost_usd"] or 0.0) != 0.0:
                rows.append({**_charge(r, meter, side, names, versions), **footprint_columns(footprint, r, side)})
    _set_prices(rows)
    return rows


def _table(rows: list[dict]) -> pa.Table:
    return pa.table({name: pa.array([r[name] for r in rows], type=_ARROW[kind]) for name, kind in COLUMNS})


def _write_csv(rows: list[dict], path: Path) -> None:
    kinds = dict(COLUMNS)
    with path.open("w", newline="") as f:
        w = csv.writer(f, quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
        w.writerow([c for c, _ in COLUMNS])
        for r in rows:
            out = []
            for name, kind in kinds.items():
                v = r[name]
                if v is None:
                    out.append("")
                elif kind in ("d", "i"):
                    out.append(_fmt_decimal(v))
                elif kind == "t":
                    out.append(v.strftime("%Y-%m-%dT%H:%M:%SZ"))
                else:
                    out.append(v)
            w.writerow(out)


def export_focus(db_path: str | Path, out_path: str | Path, fmt: str | None = None,
                 prices: str | Path | None = None) -> dict:
    """Write the FOCUS 1.2 export of the warehouse at ``db_path``.

    ``fmt``: 'parquet', 'csv' or 'both'; default from the suffix of ``out_path`` (.parquet or
    .csv), and 'both' for any other suffix (``out_path`` with .parquet and .csv). Returns the
    files written, row count, total BilledCost, the fleet bill for the same days and their
    relative difference."""
    db_path, out_path = Path(db_path), Path(out_path)
    if not db_path.exists():
        raise FileNotFoundError(f"{db_path}: no warehouse (run `tokenwatt run --home DIR` first)")
    suffix = out_path.suffix.lower()
    if fmt is None:
        fmt = {".parquet": "parquet", ".csv": "csv"}.get(suffix, "both")
    if fmt not in ("parquet", "csv", "both"):
        raise ValueError(f"format must be parquet, csv or both, got {fmt!r}")
    con = duckdb.connect(str(db_path), read_only=True)
    try:
        con.execute("set TimeZone = 'UTC'")
        rows = focus_rows(con, load_prices(prices)["focus"])
        bill = con.execute("select coalesce(sum(total_cost_usd), 0) from intermediate.int_device_day_costed").fetchone()[0]
    finally:
        con.close()
    out_path.parent.mkdir(parents=True, exist_ok=True)
    files = []
    if fmt in ("parquet", "both"):
        p = out_path if suffix == ".parquet" else out_path.with_suffix(".parquet")
        pq.write_table(_table(rows), p)
        files.append(str(p))
    if fmt in ("csv", "both"):
        p = out_path if suffix == ".csv" else out_path.with_suffix(".csv")
        _write_csv(rows, p)
        files.append(str(p))
    billed = float(sum(r["BilledCost"] for r in rows))
    return {"focus_version": FOCUS_VERSION, "files": files, "rows": len(rows), "billed_cost_usd": billed,
            "fleet_bill_usd": float(bill), "difference_rel": (billed - bill) / bill if bill else 0.0,
            "tokens": int(sum(r["x_Tokens"] for r in rows)),
            "charge_period": [str(min(r["ChargePeriodStart"] for r in rows).date()) if rows else None,
                              str(max(r["ChargePeriodEnd"] for r in rows).date()) if rows else None]}


# --- CLI hooks: pipelines/cli.py calls these two --------------------------------------------

def add_export_arguments(subparsers) -> argparse.ArgumentParser:
    """Add ``export focus`` to the tokenwatt CLI's subparsers; returns the ``export`` parser.
    The parsed args carry ``func=run_export``."""
    export = subparsers.add_parser("export", help="export the fleet's cost in a standard format")
    sub = export.add_subparsers(dest="export_format", required=True)
    p = sub.add_parser("focus", help="FinOps FOCUS 1.2 cost and usage export (Parquet and/or CSV)")
    p.add_argument("--home", default="data", help="tokenwatt home directory (default ./data)")
    p.add_argument("--out", required=True, help="output file: .parquet, .csv, or another name for both")
    p.add_argument("--format", choices=["parquet", "csv", "both"], default=None,
                   help="default: from the --out suffix")
    p.add_argument("--prices", default=None, help="price file with the focus section (default: $TOKENWATT_PRICES, "
                                                  "else the bundled one)")
    p.set_defaults(func=run_export)
    return export


def run_export(args) -> int:
    """Run ``tokenwatt export focus`` from parsed arguments; prints a JSON summary, returns an exit code."""
    db = Path(args.home).resolve() / "warehouse.duckdb"  # the home layout of pipelines/paths.py
    try:
        summary = export_focus(db, args.out, getattr(args, "format", None), getattr(args, "prices", None))
    except (FileNotFoundError, ValueError, duckdb.Error) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(summary, indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tokenwatt")
    add_export_arguments(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
