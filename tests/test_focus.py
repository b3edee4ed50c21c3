"""FOCUS 1.2 export: columns, types, decimal formatting, totals equal the fleet bill; and the
FinOps Foundation's focus-validator on both files when it is installed (FOCUS_VALIDATOR=path,
or focus-validator on PATH; it needs Python >= 3.12, so it lives in its own venv)."""
from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from warehouse.money.focus import COLUMNS, FOCUS_COLUMNS, add_export_arguments, export_focus, run_export
from warehouse.money.focus_check import add_check_arguments, check_focus, run_check
from warehouse.money.prices import load_prices


MANDATORY = [  # FOCUS 1.2 columns the validator's CostAndUsage-D-*-M rules require
    "BilledCost", "BillingAccountId", "BillingAccountName", "BillingCurrency", "BillingPeriodEnd",
    "BillingPeriodStart", "ChargeCategory", "ChargeClass", "ChargeDescription", "ChargePeriodEnd",
    "ChargePeriodStart", "ContractedCost", "EffectiveCost", "InvoiceIssuerName", "ListCost", "PricingQuantity",
    "PricingUnit", "ProviderName", "PublisherName", "ServiceCategory", "ServiceName",
]
OURS = ["x_EnergyKwh", "x_Tokens", "x_JoulesPerToken", "x_Chip", "x_Model", "x_Task", "x_Language", "x_Tier"]
# focus-validator applicability criteria: every one of FOCUS 1.2's except the two features this
# fleet does not have (commitment discounts, capacity reservations; their columns are present and
# null). More criteria = more rules run: 302 pass on the demo export, against 136 with none.
CRITERIA = ",".join([
    "ACCOUNT_NAMING_SUPPORTED", "AVAILABILITY_ZONE_SUPPORTED", "MULTIPLE_PRICING_CATEGORIES_SUPPORTED",
    "MULTIPLE_SUB_ACCOUNT_TYPES_SUPPORTED", "MULTIPLE_BILLING_ACCOUNT_TYPES_SUPPORTED", "NEGOTIATED_PRICING_SUPPORTED",
    "PUBLIC_PRICE_LIST_SUPPORTED", "USAGE_MEASUREMENT_SUPPORTED", "UNIT_PRICING_SUPPORTED", "SUB_ACCOUNT_SUPPORTED",
    "BILLING_BASED_ON_PROVISIONED_RESOURCES_SUPPORTED", "RESOURCE_TYPE_ASSIGNMENT_SUPPORTED",
    "PRICING_BILLING_CURRENCY_DIFFERENCES_SUPPORTED", "VIRTUAL_CURRENCY_SUPPORTED", "REGION_SUPPORTED",
    "TAGGING_SUPPORTED",
])
# focus-validator 2.2.1 (model-1.2.0.1): InvoiceId-C-003-C is "C-004 (null when not invoiced) OR C-005
# (not null when invoiced)", both unconditional; the OR passes, but the branch not taken is also run
# and reported on its own, so every InvoiceId column fails exactly one of them. Ours is null (no
# invoice: internal showback), which leaves C-005 reported. Nothing else may fail.
KNOWN_VALIDATOR_DEFECTS = {"InvoiceId-C-005-C"}


@pytest.fixture(scope="module")
def exported(tmp_path_factory, money_warehouse):
    home, facts = money_warehouse  # tests/conftest.py: the shared money warehouse
    assert facts["success"], facts["failures"]
    out = tmp_path_factory.mktemp("focus") / "fleet-focus"
    summary = export_focus(home / "warehouse.duckdb", out)
    return home, summary, out.with_suffix(".parquet"), out.with_suffix(".csv")


def test_columns_and_types(exported):
    _, summary, pq_path, csv_path = exported
    t = pq.read_table(pq_path)
    names = t.column_names
    assert names == [c for c, _ in COLUMNS]
    for c in MANDATORY + OURS + ["CommitmentDiscountId", "CapacityReservationId", "InvoiceId", "RegionId",
                                 "RegionName", "ResourceId", "ResourceType", "SkuId", "SkuPriceId",
                                 "ListUnitPrice", "ContractedUnitPrice", "ConsumedQuantity", "ConsumedUnit",
                                 "PricingCategory", "AvailabilityZone", "Tags", "ServiceSubcategory"]:
        assert c in names, c
    assert all(c.startswith("x_") for c in names if c not in dict(FOCUS_COLUMNS))
    kinds = dict(COLUMNS)
    for f in t.schema:
        want = {"d": pa.float64(), "i": pa.int64(), "s": pa.string(), "t": pa.timestamp("ms", tz="UTC")}[kinds[f.name]]
        assert f.type == want, (f.name, f.type)
    rows = t.to_pylist()
    assert len(rows) == summary["rows"] > 0
    r = rows[0]
    assert r["ServiceCategory"] == "AI and Machine Learning" and r["ServiceSubcategory"] == "Generative AI"
    assert r["PricingUnit"] == "1000000 Tokens" and r["ConsumedUnit"] == "Tokens"
    assert r["ChargeCategory"] == "Usage" and r["ChargeFrequency"] == "Usage-Based" and r["BillingCurrency"] == "USD"
    for r in rows:
        assert r["PricingQuantity"] == pytest.approx(r["x_Tokens"] / 1e6)
        assert r["ConsumedQuantity"] == r["x_Tokens"]
        assert r["ListCost"] == r["ListUnitPrice"] * r["PricingQuantity"]
        assert r["ContractedCost"] == r["ListCost"] and r["ContractedUnitPrice"] == r["ListUnitPrice"]
        assert r["EffectiveCost"] == r["BilledCost"]
        assert r["SkuMeter"] in ("Input Tokens", "Output Tokens")
        assert r["ChargePeriodEnd"] - r["ChargePeriodStart"] == __import__("datetime").timedelta(days=1)
        assert r["BillingPeriodStart"] <= r["ChargePeriodStart"] and r["ChargePeriodEnd"] <= r["BillingPeriodEnd"]
        assert r["x_JoulesPerToken"] == pytest.approx(r["x_EnergyKwh"] * 3.6e6 / r["x_Tokens"])
        json.loads(r["Tags"])


def test_totals_equal_the_fleet_bill(exported):
    home, summary, pq_path, csv_path = exported
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    bill = con.execute("select sum(total_cost_usd) from marts.fct_device_energy_daily").fetchone()[0]
    tokens, kwh = con.execute("select sum(total_tokens), sum(energy_kwh) from marts.fct_request_energy").fetchone()
    con.close()
    t = pq.read_table(pq_path).to_pylist()
    assert sum(r["BilledCost"] for r in t) == pytest.approx(bill, rel=1e-4)
    assert summary["fleet_bill_usd"] == pytest.approx(bill, rel=1e-12) and abs(summary["difference_rel"]) <= 1e-4
    assert sum(r["x_Tokens"] for r in t) == tokens == summary["tokens"]
    assert sum(r["x_EnergyKwh"] for r in t) == pytest.approx(kwh, rel=1e-9)
    with csv_path.open() as f:
        crow = list(csv.DictReader(f))
    assert len(crow) == len(t)
    assert sum(float(r["BilledCost"]) for r in crow) == pytest.approx(bill, rel=1e-4)


def test_csv_decimals_are_positional_and_exact(exported):
    _, _, pq_path, csv_path = exported
    kinds = dict(COLUMNS)
    with csv_path.open() as f:
        rows = list(csv.DictReader(f))
    par = pq.read_table(pq_path).to_pylist()
    num = re.compile(r"^-?[0-9]+(\.[0-9]+)?$")
    for r, p in zip(rows, par):
        for c, k in kinds.items():
            v = r[c]
            if k in ("d", "i") and v != "":
                assert num.match(v), (c, v)  # no scientific notation
                assert float(v) == p[c]  # reads back to the same double
            if k == "d" and v != "":
                assert "." in v, (c, v)  # a decimal, also for whole numbers
            if k == "t" and v != "":
                assert re.match(r"^\d{4}-\d\d-\d\dT00:00:00Z$", v), (c, v)
        # the unit-price identity holds on the CSV's own numbers
        assert float(r["ListUnitPrice"]) * float(r["PricingQuantity"]) == float(r["ListCost"])


def test_cli_hooks(exported, tmp_path, capsys):
    home, summary, _, _ = exported
    parser = argparse.ArgumentParser(prog="tokenwatt")
    add_export_arguments(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["export", "focus", "--home", str(home), "--out", str(tmp_path / "x.csv")])
    assert args.func is run_export and run_export(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["files"] == [str(tmp_path / "x.csv")] and out["rows"] == summary["rows"]
    args = parser.parse_args(["export", "focus", "--home", str(tmp_path / "nowhere"), "--out", str(tmp_path / "y")])
    assert run_export(args) == 2


def _validator() -> tuple[str, str] | None:
    exe = os.environ.get("FOCUS_VALIDATOR") or shutil.which("focus-validator")
    if not exe and Path("/tmp/focusval/bin/focus-validator").exists():
        exe = "/tmp/focusval/bin/focus-validator"
    if not exe:
        return None
    py = Path(exe).parent / "python"
    site = subprocess.run([str(py), "-c", "import focus_validator, os; "
                                          "print(os.path.dirname(os.path.dirname(focus_validator.__file__)))"],
                          capture_output=True, text=True)
    if site.returncode != 0:
        return None
    return exe, site.stdout.strip()


def run_validator(path: Path, criteria: str | None = CRITERIA) -> dict:
    """Run focus-validator (FOCUS 1.2, bundled rules, no download) on ``path``; parse its summary."""
    exe, site = _validator()
    cmd = [exe, "--data-file", str(path), "--validate-version", "1.2", "--block-download"]
    if criteria:
        cmd += ["--applicability-criteria", criteria]
    # it reads its currency-code table by a path relative to the working directory
    p = subprocess.run(cmd, cwd=site, capture_output=True, text=True, timeout=600)
    text = p.stdout + p.stderr
    m = re.search(r"Total: (\d+) \| Pass: (\d+) \| Fail: (\d+) \| Skipped: (\d+)", text)
    assert m, text[-3000:]
    failed = sorted(set(re.findall(r"❌ (\S+): FAIL", text)))
    passed = set(re.findall(r"✅ (\S+): PASS", text))
    return {"total": int(m[1]), "pass": int(m[2]), "fail": int(m[3]), "skipped": int(m[4]), "failed": failed,
            "passed": passed, "text": text}


@pytest.mark.skipif(_validator() is None and not os.environ.get("FOCUS_VALIDATOR"),
                    reason="focus-validator not installed (see docs/money.md); CI installs it and sets FOCUS_VALIDATOR")
@pytest.mark.parametrize("fmt,criteria", [("parquet", CRITERIA), ("csv", CRITERIA), ("csv", None)])
def test_focus_validator(exported, fmt, criteria):
    _, _, pq_path, csv_path = exported
    res = run_validator(pq_path if fmt == "parquet" else csv_path, criteria)
    unexpected = set(res["failed"]) - KNOWN_VALIDATOR_DEFECTS
    assert not unexpected, res["text"][-4000:]
    assert res["fail"] == len(res["failed"]) <= len(KNOWN_VALIDATOR_DEFECTS)
    # the nullability rule those leaves belong to passes, and so does every mandatory column
    assert "InvoiceId-C-003-C" in res["passed"] and "InvoiceId-C-000-O" in res["passed"]
    assert res["pass"] >= (290 if criteria else 130)
    if not criteria:
        return
    for rule in ("BilledCost-C-000-M", "ListCost-C-009-C", "PricingUnit-C-000-M", "ServiceSubcategory-C-000-O",
                 "ChargePeriodStart-C-000-M", "ConsumedQuantity-C-000-C", "CostAndUsage-D-006-M",
                 "CostAndUsage-D-068-M", "SkuPriceId-C-000-C", "Tags-C-000-C"):
        assert rule in res["passed"], rule


def test_ai_skus_price_versions_and_model_identity(exported):
    """FOCUS AI appendix: an Input Tokens and an Output Tokens SKU for every (chip, model); each
    SkuPriceId one ListUnitPrice; model identity in SkuPriceDetails; the operator's names."""
    home, _, pq_path, _ = exported
    rows = pq.read_table(pq_path).to_pylist()
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    served = set(con.execute("select distinct chip, model from marts.fct_request_energy where chip is not null").fetchall())
    in_tok, out_tok = con.execute("select sum(prompt_tokens), sum(completion_tokens) from marts.fct_request_energy").fetchone()
    con.close()
    meters = {}
    for r in rows:
        meters.setdefault((r["x_Chip"], r["x_Model"]), set()).add(r["SkuMeter"])
    assert served and set(meters) == served
    assert all(m == {"Input Tokens", "Output Tokens"} for m in meters.values()), meters
    assert sum(r["x_Tokens"] for r in rows if r["SkuMeter"] == "Input Tokens") == in_tok
    assert sum(r["x_Tokens"] for r in rows if r["SkuMeter"] == "Output Tokens") == out_tok
    prices = {}
    for r in rows:
        prices.setdefault(r["SkuPriceId"], set()).add(r["ListUnitPrice"])
        assert r["SkuPriceId"].startswith(r["SkuId"] + "/v-")
    assert len(prices) == 2 * len(served)  # one price version per SKU: the price file did not change
    assert all(len(v) == 1 for v in prices.values()), {k: len(v) for k, v in prices.items()}
    names = load_prices()["focus"]
    for r in rows[:50]:
        d = json.loads(r["SkuPriceDetails"])
        ident = names["models"][r["x_Model"]]
        assert d == {"ModelDeveloper": ident["developer"], "ModelFamily": ident["family"], "ModelId": ident["id"],
                     "ModelVersion": ident["version"]}
        assert r["ProviderName"] == names["provider_name"] != "tokenwatt"
        assert r["InvoiceIssuerName"] == names["invoice_issuer_name"] and r["PublisherName"] == names["publisher_name"]
        assert r["x_Tier"] in ("free", "subscription", "api") and r["x_Language"]


def test_a_price_change_opens_a_new_sku_price_id(exported, tmp_path):
    """Changing a chip's price in the ref tables gives its SKUs a new SkuPriceId; the others keep theirs."""
    import shutil as _sh

    from warehouse.money.focus import price_versions

    home, _, _, _ = exported
    db = tmp_path / "w.duckdb"
    _sh.copy(home / "warehouse.duckdb", db)
    con = duckdb.connect(str(db))
    before = price_versions(con)
    con.execute("update ref.chip_costs set hardware_usd_per_device_hour = hardware_usd_per_device_hour * 0.8 "
                "where chip = 'amd-mi300x'")
    after = price_versions(con)
    con.close()
    assert before["amd-mi300x"] != after["amd-mi300x"]
    assert all(before[c] == after[c] for c in before if c != "amd-mi300x")


def test_check_focus_passes_on_the_export(exported):
    home, _, pq_path, csv_path = exported
    for p in (pq_path, csv_path):
        res = check_focus(p, home)
        assert res["failures"] == [], res["failures"][:5]
        assert res["rows"] > 0 and abs(res["billed_cost_usd"] - res["fleet_bill_usd"]) <= 1e-4 * res["fleet_bill_usd"]


def _broken_list_cost(src: Path, dst: Path, row: int = 3) -> float:
    t = pq.read_table(src)
    rows = t.to_pylist()
    rows[row]["ListCost"] = rows[row]["ListCost"] * 1.5 + 0.01
    pq.write_table(pa.Table.from_pylist(rows, schema=t.schema), dst)
    return rows[row]["ListCost"]


@pytest.mark.parametrize("breakage,column", [
    ("list_cost", "ListCost"),
    ("period", "ChargePeriodStart"),
    ("price", "ListUnitPrice"),
    ("negative", "BilledCost"),
])
def test_check_focus_names_row_and_column_of_a_broken_row(exported, tmp_path, breakage, column):
    import datetime as _dt

    home, _, pq_path, _ = exported
    t = pq.read_table(pq_path)
    rows = t.to_pylist()
    i = 3
    if breakage == "list_cost":
        rows[i]["ListCost"] = rows[i]["ListCost"] * 1.5 + 0.01
    elif breakage == "period":
        rows[i]["ChargePeriodStart"] = rows[i]["BillingPeriodStart"] - _dt.timedelta(days=1)
    elif breakage == "price":  # a second ListUnitPrice for one SkuPriceId (ListCost kept consistent)
        rows[i]["ListUnitPrice"] *= 1.1
        rows[i]["ListCost"] = rows[i]["ListUnitPrice"] * rows[i]["PricingQuantity"]
        rows[i]["ContractedUnitPrice"], rows[i]["ContractedCost"] = rows[i]["ListUnitPrice"], rows[i]["ListCost"]
    else:
        rows[i]["BilledCost"] = -1.0
    bad = tmp_path / "bad.parquet"
    pq.write_table(pa.Table.from_pylist(rows, schema=t.schema), bad)
    res = check_focus(bad)
    assert res["failures"], breakage
    assert any(f.startswith(f"row {i}: column {column}") for f in res["failures"]), res["failures"]
    parser = argparse.ArgumentParser(prog="tokenwatt")
    add_check_arguments(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["check", "focus", str(bad)])
    assert args.func is run_check and run_check(args) == 1
    assert run_check(parser.parse_args(["check", "focus", str(pq_path), "--home", str(home)])) == 0


@pytest.mark.skipif(_validator() is None and not os.environ.get("FOCUS_VALIDATOR"),
                    reason="focus-validator not installed (see docs/money.md); CI installs it and sets FOCUS_VALIDATOR")
def test_broken_list_cost_fails_our_check_while_the_validator_stays_green(exported, tmp_path):
    """Why our check exists: focus-validator 1.2 does not check ListCost = ListUnitPrice x
    PricingQuantity (its rule is guarded by a ChargeClass condition that never fires)."""
    _, _, pq_path, _ = exported
    bad = tmp_path / "broken-list-cost.parquet"
    _broken_list_cost(pq_path, bad)
    res = run_validator(bad, CRITERIA)
    assert set(res["failed"]) <= KNOWN_VALIDATOR_DEFECTS, res["failed"]
    ours = check_focus(bad)["failures"]
    assert any(f.startswith("row 3: column ListCost") for f in ours), ours
