"""Export the fleet's cost as FinOps FOCUS 1.2 (Cost and Usage dataset): Parquet and/or CSV.

    tokenwatt export focus --home DIR --out FILE[.parquet|.csv] [--format parquet|csv|both]

One charge row per UTC day x replica (the resource) x model x task, from the allocation basis
(marts.fct_request_energy.cost_usd): the rows' BilledCost adds up to the fleet bill (the
allocation reconciles with it, marts.fct_cost_reconciliation). Charges are priced per million
tokens (PricingUnit "1000000 Tokens", PricingQuantity = tokens / 1e6) and consumed in tokens
(ConsumedUnit "Tokens"). This is internal showback: provider, publisher and invoice issuer are
the tokenwatt fleet itself, there are no commitment discounts or capacity reservations (those
columns are present and null), and list = contracted = effective = billed cost. Our own columns
carry the ``x_`` prefix (x_EnergyKwh, x_Tokens, x_JoulesPerToken, x_Chip, x_Model, x_Task, ...).

The CSV writes every decimal positionally (never scientific notation), with the shortest digits
that read back to the same double, so ListUnitPrice x PricingQuantity = ListCost holds for a
reader exactly as in the Parquet file.

Checked with the FinOps Foundation's ``focus-validator`` (version 1.2 rules): see docs/money.md.
"""
from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import math
import sys
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from collectors.units import J_PER_KWH

FOCUS_VERSION = "1.2"
PROVIDER = "tokenwatt"
BILLING_ACCOUNT_ID = "tokenwatt-fleet"
BILLING_ACCOUNT_NAME = "tokenwatt inference fleet"

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
    ("x_Tokens", "i"), ("x_PromptTokens", "i"), ("x_CompletionTokens", "i"), ("x_Requests", "i"),
    ("x_EnergyKwh", "d"), ("x_ActiveEnergyKwh", "d"), ("x_JoulesPerToken", "d"), ("x_EnergyCost", "d"),
    ("x_HardwareCost", "d"), ("x_UsageCost", "d"), ("x_Chip", "s"), ("x_Vendor", "s"), ("x_Model", "s"),
    ("x_Task", "s"), ("x_Node", "s"), ("x_Site", "s"), ("x_CostBasis", "s"),
]
COLUMNS = FOCUS_COLUMNS + EXTRA_COLUMNS
_ARROW = {"s": pa.string(), "d": pa.float64(), "i": pa.int64(), "t": pa.timestamp("ms", tz="UTC")}

_QUERY = """
with req as (
    select date, replica_id, node, chip, vendor, model, task,
           count(*) as requests, sum(total_tokens) as tokens, sum(prompt_tokens) as prompt_tokens,
           sum(completion_tokens) as completion_tokens, sum(energy_j) as energy_j,
           sum(active_energy_j) as active_energy_j, sum(cost_usd) as cost_usd,
           sum(energy_cost_usd) as energy_cost_usd, sum(hardware_cost_usd) as hardware_cost_usd,
           sum(usage_cost_usd) as usage_cost_usd
    from marts.fct_request_energy
    group by all
)
select r.*, coalesce(ns.site, 'default') as site, cc.basis
from req as r
left join ref.node_sites as ns on ns.node = r.node
left join ref.chip_costs as cc on cc.chip = r.chip
order by r.date, r.replica_id, r.model, r.task
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


def focus_rows(con: duckdb.DuckDBPyConnection) -> list[dict]:
    """The charge rows (FOCUS columns and ours) from an open warehouse."""
    rows = []
    cur = con.execute(_QUERY)
    names = [c[0] for c in cur.description]
    for rec in cur.fetchall():
        r = dict(zip(names, rec))
        day = r["date"]
        if day is None or r["tokens"] is None:
            continue
        bp_start, bp_end = _month(day)
        tokens = int(r["tokens"])
        cost = float(r["cost_usd"] or 0.0)
        qty = tokens / 1e6
        unit_price = cost / qty if qty > 0 else None
        list_cost = unit_price * qty if unit_price is not None else cost
        replica = r["replica_id"] or "unassigned"
        chip, model, task, vendor = r["chip"] or "unknown", r["model"] or "unknown", r["task"] or "unknown", r["vendor"]
        site = r["site"]
        sku = f"{chip}/{model}"
        energy_kwh = float(r["energy_j"] or 0.0) / J_PER_KWH
        rows.append({
            "AvailabilityZone": None,
            "BilledCost": cost,
            "BillingAccountId": BILLING_ACCOUNT_ID,
            "BillingAccountName": BILLING_ACCOUNT_NAME,
            "BillingAccountType": "Internal Fleet",
            "BillingCurrency": "USD",
            "BillingPeriodEnd": _utc(bp_end),
            "BillingPeriodStart": _utc(bp_start),
            "CapacityReservationId": None,
            "CapacityReservationStatus": None,
            "ChargeCategory": "Usage",
            "ChargeClass": None,
            "ChargeDescription": f"LLM inference, {model} {task} on {chip} (replica {replica}), allocated fleet cost",
            "ChargeFrequency": "Usage-Based",
            "ChargePeriodEnd": _utc(day + dt.timedelta(days=1)),
            "ChargePeriodStart": _utc(day),
            "CommitmentDiscountCategory": None,
            "CommitmentDiscountId": None,
            "CommitmentDiscountName": None,
            "CommitmentDiscountQuantity": None,
            "CommitmentDiscountStatus": None,
            "CommitmentDiscountType": None,
            "CommitmentDiscountUnit": None,
            "ConsumedQuantity": float(tokens),
            "ConsumedUnit": "Tokens",
            "ContractedCost": list_cost,
            "ContractedUnitPrice": unit_price,
            "EffectiveCost": cost,
            "InvoiceId": None,  # internal showback: no invoice (FOCUS: null when not invoiced)
            "InvoiceIssuerName": PROVIDER,
            "ListCost": list_cost,
            "ListUnitPrice": unit_price,
            "PricingCategory": "Standard",
            "PricingCurrency": "USD",
            "PricingCurrencyContractedUnitPrice": unit_price,
            "PricingCurrencyEffectiveCost": cost,
            "PricingCurrencyListUnitPrice": unit_price,
            "PricingQuantity": qty,
            "PricingUnit": "1000000 Tokens",
            "ProviderName": PROVIDER,
            "PublisherName": PROVIDER,
            "RegionId": site,
            "RegionName": site,
            "ResourceId": replica,
            "ResourceName": replica,
            "ResourceType": "Inference Replica",
            "ServiceCategory": "AI and Machine Learning",
            "ServiceName": "LLM Inference",
            "ServiceSubcategory": "Generative AI",
            "SkuId": sku,
            "SkuMeter": "Tokens",
            "SkuPriceDetails": None,
            "SkuPriceId": f"{sku}/{bp_start:%Y-%m}",
            "SubAccountId": r["node"] or "unknown",
            "SubAccountName": r["node"] or "unknown",
            "SubAccountType": "Node",
            "Tags": json.dumps({"vendor": vendor, "chip": chip, "model": model, "task": task}, sort_keys=True),
            "x_Tokens": tokens,
            "x_PromptTokens": int(r["prompt_tokens"] or 0),
            "x_CompletionTokens": int(r["completion_tokens"] or 0),
            "x_Requests": int(r["requests"]),
            "x_EnergyKwh": energy_kwh,
            "x_ActiveEnergyKwh": float(r["active_energy_j"] or 0.0) / J_PER_KWH,
            "x_JoulesPerToken": float(r["energy_j"] or 0.0) / tokens if tokens > 0 else None,
            "x_EnergyCost": float(r["energy_cost_usd"] or 0.0),
            "x_HardwareCost": float(r["hardware_cost_usd"] or 0.0),
            "x_UsageCost": float(r["usage_cost_usd"] or 0.0),
            "x_Chip": chip,
            "x_Vendor": vendor,
            "x_Model": model,
            "x_Task": task,
            "x_Node": r["node"],
            "x_Site": site,
            "x_CostBasis": r["basis"],
        })
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


def export_focus(db_path: str | Path, out_path: str | Path, fmt: str | None = None) -> dict:
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
        rows = focus_rows(con)
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
    p.set_defaults(func=run_export)
    return export


def run_export(args) -> int:
    """Run ``tokenwatt export focus`` from parsed arguments; prints a JSON summary, returns an exit code."""
    db = Path(args.home).resolve() / "warehouse.duckdb"  # the home layout of pipelines/paths.py
    try:
        summary = export_focus(db, args.out, getattr(args, "format", None))
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
