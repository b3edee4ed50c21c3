"""A wrong price file is refused with a message naming the file and the field, and the Dagster
``prices`` asset fails on it so nothing downstream runs."""
from __future__ import annotations

import copy
from pathlib import Path

import duckdb
import pytest
import yaml

from warehouse.money.prices import PRICES_FILE, PriceError, load_prices, tariff_multipliers, write_ref_tables

GOOD = yaml.safe_load(PRICES_FILE.read_text())


def _write(tmp_path: Path, doc, name: str = "prices.yaml") -> Path:
    p = tmp_path / name
    p.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc))
    return p


def _mutate(fn):
    doc = copy.deepcopy(GOOD)
    fn(doc)
    return doc


def test_bundled_file_is_valid():
    p = load_prices()
    chips = {c[0]: c for c in p["chips"]}
    assert chips["nvidia-h100-sxm"][2] == pytest.approx(6.88)  # FACTS.md B2
    assert chips["amd-mi300x"][2] == pytest.approx(6.00)
    # ownership: (capex + design/units) / (years * 8760) + opex
    assert chips["custom-asic"][2] == pytest.approx((12000 + 500) / (4 * 8760) + 0.35)
    assert tariff_multipliers(p)[15] == 1.25 and tariff_multipliers(p)[3] == 1.0


def _del(path):
    def f(doc):
        d = doc
        for k in path[:-1]:
            d = d[k]
        del d[path[-1]]
    return f


def _set(path, value):
    def f(doc):
        d = doc
        for k in path[:-1]:
            d = d[k]
        d[path[-1]] = value
    return f


BAD = [
    # (id, mutation, field named in the message, words in the message)
    ("missing-rental-price", _del(["chips", "amd-mi300x", "usd_per_device_hour"]),
     "chips.amd-mi300x.usd_per_device_hour", "missing"),
    ("missing-top-level", _del(["electricity"]), "electricity", "missing"),
    ("missing-source", _del(["chips", "nvidia-h100-sxm", "source"]), "chips.nvidia-h100-sxm.source", "missing"),
    ("missing-default-site", _del(["sites", "default"]), "sites.default", "missing"),
    ("missing-basis", _del(["chips", "amd-mi300x", "basis"]), "chips.amd-mi300x.basis", "missing"),
    ("string-price", _set(["chips", "nvidia-h100-sxm", "usd_per_device_hour"], "6.88"),
     "chips.nvidia-h100-sxm.usd_per_device_hour", "must be a number"),
    ("bool-pue", _set(["sites", "us-east", "pue"], True), "sites.us-east.pue", "must be a number"),
    ("list-chip", _set(["chips", "amd-mi300x"], [6.0]), "chips.amd-mi300x", "must be a mapping"),
    ("negative-rental", _set(["chips", "amd-mi300x", "usd_per_device_hour"], -6.0),
     "chips.amd-mi300x.usd_per_device_hour", ">= 0"),
    ("negative-kwh", _set(["electricity", "default_usd_per_kwh"], -0.08),
     "electricity.default_usd_per_kwh", ">= 0"),
    ("negative-api-price", _set(["revenue", "api", "llama-8b", "usd_per_mtok_output"], -0.6),
     "revenue.api.llama-8b.usd_per_mtok_output", ">= 0"),
    ("negative-capex", _set(["chips", "custom-asic", "capex_usd"], -1),
     "chips.custom-asic.capex_usd", ">= 0"),
    ("pue-below-one", _set(["sites", "us-central", "pue"], 0.9), "sites.us-central.pue", ">= 1.0"),
    ("bad-basis", _set(["chips", "amd-mi300x", "basis"], "lease"), "chips.amd-mi300x.basis", "rental or ownership"),
    ("typo-field", _set(["chips", "amd-mi300x", "usd_per_device_hr"], 6.0),
     "chips.amd-mi300x.usd_per_device_hr", "unknown field"),
    ("overlapping-tariff", _set(["electricity", "time_of_day"],
                                [{"from_hour": 14, "to_hour": 20, "multiplier": 1.25},
                                 {"from_hour": 18, "to_hour": 22, "multiplier": 1.1}]),
     "electricity.time_of_day[1]", "overlaps"),
    ("tariff-backwards", _set(["electricity", "time_of_day"], [{"from_hour": 20, "to_hour": 14, "multiplier": 1.2}]),
     "electricity.time_of_day[0].to_hour", "after"),
    ("currency", _set(["currency"], "EUR"), "currency", "USD"),
    # issue 19 item 12: NaN and Inf are refused, naming the field (YAML .nan / .inf read as floats)
    ("nan-design-cost", _set(["chips", "custom-asic", "design_cost_usd"], float("nan")),
     "chips.custom-asic.design_cost_usd", "finite"),
    ("inf-design-units", _set(["chips", "custom-asic", "design_units"], float("inf")),
     "chips.custom-asic.design_units", "finite"),
    ("inf-subscribers", _set(["revenue", "subscription", "subscribers"], float("inf")),
     "revenue.subscription.subscribers", "finite"),
    ("nan-pue", _set(["sites", "us-east", "pue"], float("nan")), "sites.us-east.pue", "finite"),
    ("huge-design-cost", _set(["chips", "custom-asic", "design_cost_usd"], 1e300),
     "chips.custom-asic.design_cost_usd", "<="),
    ("unknown-top", _set(["rebates"], 1), "rebates", "unknown field"),
]


@pytest.mark.parametrize("case", BAD, ids=[c[0] for c in BAD])
def test_wrong_file_is_rejected_naming_file_and_field(tmp_path, case):
    _, mutate, field, words = case
    path = _write(tmp_path, _mutate(mutate), name=f"bad-{case[0]}.yaml")
    with pytest.raises(PriceError) as err:
        load_prices(path)
    msg = str(err.value)
    assert str(path) in msg, msg
    assert f"'{field}" in msg, msg
    assert words in msg, msg


def test_not_yaml_and_not_found(tmp_path):
    bad = _write(tmp_path, "chips: [unclosed\n", "broken.yaml")
    with pytest.raises(PriceError, match="broken.yaml: not valid YAML"):
        load_prices(bad)
    with pytest.raises(PriceError, match="nope.yaml: file not found"):
        load_prices(tmp_path / "nope.yaml")


def test_env_var_selects_the_file(tmp_path, monkeypatch):
    doc = _mutate(_set(["chips", "amd-mi300x", "usd_per_device_hour"], 4.5))
    path = _write(tmp_path, doc)
    monkeypatch.setenv("TOKENWATT_PRICES", str(path))
    p = load_prices()
    assert p["source"] == str(path)
    assert {c[0]: c[2] for c in p["chips"]}["amd-mi300x"] == 4.5


def test_ref_tables_written(tmp_path):
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    write_ref_tables(con, load_prices(), {"n0": "us-east"})
    assert con.execute("select count(*), sum(multiplier) from ref.tariff_hours").fetchone() == (24, 24 + 6 * 0.25)
    assert con.execute("select site from ref.node_sites").fetchall() == [("us-east",)]
    con.close()


def test_dagster_prices_asset_fails_and_nothing_downstream_runs(tmp_path, monkeypatch):
    import dagster as dg

    from pipelines.money import prices
    from pipelines.resources import TokenwattHome

    home = tmp_path / "home"
    home.mkdir()
    ran = []

    @dg.asset(key=["marts", "downstream_probe"], deps=[["ref", "chip_costs"]])
    def downstream_probe():
        ran.append(True)

    good = _write(tmp_path, GOOD, "good.yaml")
    monkeypatch.setenv("TOKENWATT_PRICES", str(good))
    res = dg.materialize([prices, downstream_probe], resources={"tokenwatt": TokenwattHome(path=str(home))})
    assert res.success and ran == [True]
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    before = con.execute("select * from ref.chip_costs order by chip").fetchall()
    con.close()

    ran.clear()
    bad = _write(tmp_path, _mutate(_set(["chips", "amd-mi300x", "usd_per_device_hour"], -1.0)), "bad.yaml")
    monkeypatch.setenv("TOKENWATT_PRICES", str(bad))
    res = dg.materialize([prices, downstream_probe], resources={"tokenwatt": TokenwattHome(path=str(home))},
                         raise_on_error=False)
    assert not res.success
    assert ran == [], "an asset downstream of prices ran on a bad price file"
    failures = [e for e in res.all_events if e.event_type_value == "STEP_FAILURE"]
    assert failures and failures[0].step_key == "prices"
    text = str(failures[0].event_specific_data.error)
    assert str(bad) in text and "chips.amd-mi300x.usd_per_device_hour" in text
    started = {e.step_key for e in res.all_events if e.event_type_value in ("STEP_START", "STEP_SUCCESS")}
    assert "downstream_probe" not in started
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    assert con.execute("select * from ref.chip_costs order by chip").fetchall() == before  # old tables kept
    con.close()
