"""Our own checks of a FOCUS export, beside the FinOps Foundation's validator.

    tokenwatt check focus FILE [--home DIR]

focus-validator 1.2 leaves the cost arithmetic unchecked (its ListCost/ContractedCost rules are
guarded by a ChargeClass condition that never fires, FOCUS_Spec #2681), so a clean validator run
is no proof. These checks are: ListCost = ListUnitPrice x PricingQuantity and ContractedCost =
ContractedUnitPrice x PricingQuantity; PricingQuantity = ConsumedQuantity / 1e6 for
"1000000 Tokens"; BilledCost and EffectiveCost finite and not negative, equal where there is no
commitment discount; one ListUnitPrice (and one SkuId and SkuPriceDetails) per SkuPriceId, and
summed over a SkuPriceId ListCost equals EffectiveCost (the list rate is the version's cost per
unit); ChargePeriod inside the BillingPeriod; an "Input Tokens" and an "Output Tokens" SKU for every
(chip, model); with ``--home``, the BilledCost total equals the warehouse's fleet bill within
0.01 %. Each failure names the row (0-based data row) and the column.
"""
from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import math
import sys
from pathlib import Path

import pyarrow.parquet as pq

from collectors.home import Home

REL_TOL = 1e-9
BILL_TOL_REL = 1e-4
_NUM = ("BilledCost", "EffectiveCost", "ListCost", "ListUnitPrice", "ContractedCost", "ContractedUnitPrice",
        "PricingQuantity", "ConsumedQuantity")
_TS = ("ChargePeriodStart", "ChargePeriodEnd", "BillingPeriodStart", "BillingPeriodEnd")


def read_rows(path: Path) -> list[dict]:
    """The export's rows as dicts (Parquet or CSV), numbers as floats and timestamps as datetimes."""
    if path.suffix.lower() == ".parquet":
        return pq.read_table(path).to_pylist()
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        for c in _NUM:
            if c in r:
                r[c] = float(r[c]) if r[c] not in ("", None) else None
        for c in _TS:
            if r.get(c):
                r[c] = dt.datetime.fromisoformat(r[c].replace("Z", "+00:00"))
    return rows


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= REL_TOL * max(abs(a), abs(b), 1e-12)


def _row_checks(i: int, r: dict) -> list[str]:
    out = []
    for c in _NUM:
        v = r.get(c)
        if v is not None and not math.isfinite(v):
            out.append(f"row {i}: column {c}: not a finite number ({v!r})")
    if out:
        return out
    for cost, price in (("ListCost", "ListUnitPrice"), ("ContractedCost", "ContractedUnitPrice")):
        if r.get(price) is not None and r.get("PricingQuantity") is not None and r.get(cost) is not None:
            want = r[price] * r["PricingQuantity"]
            if not _close(r[cost], want):
                out.append(f"row {i}: column {cost}: {r[cost]!r} != {price} x PricingQuantity = {want!r}")
    if r.get("PricingUnit") == "1000000 Tokens" and r.get("ConsumedUnit") == "Tokens":
        if not _close(r["PricingQuantity"], r["ConsumedQuantity"] / 1e6):
            out.append(f"row {i}: column PricingQuantity: {r['PricingQuantity']!r} != ConsumedQuantity / 1e6")
    for c in ("BilledCost", "EffectiveCost"):
        if r.get(c) is None or r[c] < 0:
            out.append(f"row {i}: column {c}: must be a number >= 0, got {r.get(c)!r}")
    if not r.get("CommitmentDiscountId") and None not in (r.get("BilledCost"), r.get("EffectiveCost")):
        if not _close(r["EffectiveCost"], r["BilledCost"]):
            out.append(f"row {i}: column EffectiveCost: {r['EffectiveCost']!r} != BilledCost {r['BilledCost']!r} "
                       f"without a commitment discount")
    cs, ce, bs, be = (r.get(c) for c in _TS)
    if None in (cs, ce, bs, be) or not (bs <= cs < ce <= be):
        out.append(f"row {i}: column ChargePeriodStart/ChargePeriodEnd: [{cs}, {ce}) is not inside the "
                   f"billing period [{bs}, {be})")
    return out


def _price_checks(rows: list[dict]) -> list[str]:
    out = []
    first: dict[str, int] = {}
    sums: dict[str, list[float]] = {}
    for i, r in enumerate(rows):
        k = r.get("SkuPriceId")
        if not k:
            out.append(f"row {i}: column SkuPriceId: missing")
            continue
        j = first.setdefault(k, i)
        for c in ("ListUnitPrice", "SkuId", "SkuPriceDetails", "SkuMeter"):
            if r.get(c) != rows[j].get(c):
                out.append(f"row {i}: column {c}: {r.get(c)!r} differs from row {j}'s {rows[j].get(c)!r} "
                           f"for SkuPriceId {k}")
        s = sums.setdefault(k, [0.0, 0.0])
        s[0] += r.get("ListCost") or 0.0
        s[1] += r.get("EffectiveCost") or 0.0
    for k, (lc, ec) in sums.items():
        if abs(lc - ec) > 1e-6 * max(abs(ec), 1e-9):
            out.append(f"row {first[k]}: column ListCost: summed over SkuPriceId {k} = {lc!r} != EffectiveCost {ec!r}")
    meters: dict[tuple, set] = {}
    for r in rows:
        meters.setdefault((r.get("x_Chip"), r.get("x_Model")), set()).add(r.get("SkuMeter"))
    for (chip, model), m in sorted(meters.items(), key=str):
        missing = {"Input Tokens", "Output Tokens"} - m
        if missing:
            out.append(f"column SkuMeter: ({chip}, {model}) has no {', '.join(sorted(missing))} rows")
    return out


def fleet_bill(home: Path) -> float:
    import duckdb

    con = duckdb.connect(str(Home(home).db), read_only=True)
    try:
        return float(con.execute("select coalesce(sum(total_cost_usd), 0) from intermediate.int_device_day_costed")
                     .fetchone()[0])
    finally:
        con.close()


def check_focus(path: str | Path, home: str | Path | None = None) -> dict:
    """Run every check on the export at ``path``; returns failures (empty = pass) and totals."""
    path = Path(path)
    rows = read_rows(path)
    failures = [f for i, r in enumerate(rows) for f in _row_checks(i, r)]
    failures += _price_checks(rows)
    billed = float(sum(r.get("BilledCost") or 0.0 for r in rows))
    out = {"file": str(path), "rows": len(rows), "billed_cost_usd": billed,
           "sku_price_ids": len({r.get("SkuPriceId") for r in rows})}
    if home is not None:
        bill = fleet_bill(Path(home))
        out["fleet_bill_usd"] = bill
        if abs(billed - bill) > BILL_TOL_REL * max(abs(bill), 1e-9):
            failures.append(f"column BilledCost: total {billed!r} != fleet bill {bill!r} (tolerance 0.01 %)")
    out["failures"] = failures
    return out


def add_check_arguments(subparsers) -> argparse.ArgumentParser:
    """Add ``check focus FILE`` to the tokenwatt CLI's subparsers (``func=run_check``)."""
    check = subparsers.add_parser("check", help="check an export")
    sub = check.add_subparsers(dest="check_format", required=True)
    p = sub.add_parser("focus", help="arithmetic and consistency checks of a FOCUS export (Parquet or CSV)")
    p.add_argument("file", help="the export: .parquet or .csv")
    p.add_argument("--home", default=None, help="tokenwatt home: also check the total against its fleet bill")
    p.set_defaults(func=run_check)
    return check


def run_check(args) -> int:
    """``tokenwatt check focus``: prints each failure and a JSON summary; 0 when all pass, 1 if not."""
    try:
        res = check_focus(args.file, args.home)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for f in res["failures"][:200]:
        print(f"FAIL {f}", file=sys.stderr)
    summary = {k: v for k, v in res.items() if k != "failures"}
    summary["failures"] = len(res["failures"])
    print(json.dumps(summary, indent=2))
    return 1 if res["failures"] else 0
