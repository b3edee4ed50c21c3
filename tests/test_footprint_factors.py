"""Carbon and water factors: the shipped file loads; a wrong file is refused naming the field."""
from __future__ import annotations

import pytest
import yaml

from warehouse.footprint.factors import FOOTPRINT_FILE, FootprintError, load_footprint


def test_shipped_file_loads_with_sources():
    f = load_footprint()
    assert "default" in f
    d = f["default"]
    assert 0 < d.market_g_per_kwh <= d.location_g_per_kwh
    assert d.carbon_source and d.water_source
    assert d.location_g_per_kwh_at(13) == d.location_g_per_kwh  # no profile: the annual factor


def _write(tmp_path, mutate):
    raw = yaml.safe_load(FOOTPRINT_FILE.read_text())
    mutate(raw)
    p = tmp_path / "fp.yaml"
    p.write_text(yaml.safe_dump(raw))
    return p


@pytest.mark.parametrize("mutate, field", [
    (lambda r: r["sites"]["default"]["carbon"].update(location_g_per_kwh=float("nan")),
     "sites.default.carbon.location_g_per_kwh"),
    (lambda r: r["sites"]["default"]["carbon"].update(market_g_per_kwh=-1), "sites.default.carbon.market_g_per_kwh"),
    (lambda r: r["sites"]["default"]["water"].update(onsite_l_per_kwh="lots"), "sites.default.water.onsite_l_per_kwh"),
    (lambda r: r["sites"]["default"]["water"].update(wue=1.0), "sites.default.water.wue"),
    (lambda r: r["sites"]["default"]["carbon"].pop("source"), "sites.default.carbon.source"),
    (lambda r: r["sites"]["us-east"]["carbon"].update(hourly_profile=[1.0] * 23), "sites.us-east.carbon.hourly_profile"),
    (lambda r: r["sites"]["us-east"]["carbon"].update(hourly_profile=[2.0] * 24), "sites.us-east.carbon.hourly_profile"),
    (lambda r: r["sites"].pop("default"), "sites.default"),
])
def test_a_wrong_file_names_the_field(tmp_path, mutate, field):
    p = _write(tmp_path, mutate)
    with pytest.raises(FootprintError) as exc:
        load_footprint(p)
    assert str(p) in str(exc.value) and f"'{field}" in str(exc.value)


def test_an_hourly_profile_shapes_the_location_factor(tmp_path):
    prof = [0.5] * 12 + [1.5] * 12
    p = _write(tmp_path, lambda r: r["sites"]["us-east"]["carbon"].update(hourly_profile=prof))
    s = load_footprint(p)["us-east"]
    assert s.location_g_per_kwh_at(0) == pytest.approx(0.5 * s.location_g_per_kwh)
    assert s.location_g_per_kwh_at(20) == pytest.approx(1.5 * s.location_g_per_kwh)
