"""The whole footprint on a simulated home, through the real pipeline (Dagster, DuckDB, dbt).

Per node-day, accelerator + reserve + host + facility equals PUE x (measured device energy + host
energy) within 1e-6, each side computed from its own inputs (attribution.device_day, the spool's
host_samples files, ref.sites); the per-request footprint adds up to the shared part, which is the
whole on node-days with requests; a spare node's whole footprint is pooled to the requests of its
chip that day, with the carbon and water of its own site (the sites get different factors here).
"""
from __future__ import annotations

import datetime as dt
import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from collectors.sim.fleet import PRESETS
from warehouse.footprint.factors import FOOTPRINT_FILE
from warehouse.ingest.ddl import connect

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """The tiny fleet plus a spare device on mi300x-0 and a spare node, one day at 10 s."""
    from collectors.sim.simulate import simulate
    from pipelines.cli import run_pipeline

    fleet = yaml.safe_load((PRESETS / "tiny.yaml").read_text())
    fleet["name"] = "tiny-spare"
    for n in fleet["nodes"]:
        if n["name"] == "mi300x-0":
            n["devices"] = 3
    fleet["nodes"].append({"name": "spare-0", "chip": "nvidia-h100-sxm", "devices": 1, "site": "us-central"})
    home = tmp_path_factory.mktemp("footprint_home")
    path = home / "fleet.yaml"
    path.write_text(yaml.safe_dump(fleet))
    factors = yaml.safe_load(FOOTPRINT_FILE.read_text())
    factors["sites"]["us-central"] = {  # a cleaner grid than us-east, with an hourly profile
        "carbon": {"location_g_per_kwh": 200, "market_g_per_kwh": 20, "source": "test",
                   "hourly_profile": [1.5] * 12 + [0.5] * 12},
        "water": {"onsite_l_per_kwh": 0.3, "source": "test"}}
    (home / "footprint.yaml").write_text(yaml.safe_dump(factors))
    simulate(path, home, "2026-10-01", 1, 10.0, 3, progress=False)
    old = os.environ.get("TOKENWATT_FOOTPRINT")
    os.environ["TOKENWATT_FOOTPRINT"] = str(home / "footprint.yaml")
    try:
        assert run_pipeline(home, raise_on_error=True).success
    finally:
        if old is None:
            os.environ.pop("TOKENWATT_FOOTPRINT")
        else:
            os.environ["TOKENWATT_FOOTPRINT"] = old
    return home


def _q(home, sql, params=()):
    con = connect(home / "warehouse.duckdb", read_only=True)
    try:
        return con.execute(sql, list(params)).fetchall()
    finally:
        con.close()


def _spool_host_j(home) -> dict:
    """Host joules per (node, day of the interval's end - 1 us) straight from the spool files."""
    tbl = pa.concat_tables([pq.read_table(p) for p in sorted((home / "spool" / "host_samples").rglob("*.parquet"))])
    out: dict = {}
    for node, ts, e in zip(tbl["node"].to_pylist(), tbl["ts"].to_pylist(), tbl["energy_delta_j"].to_pylist()):
        key = (node, (ts - dt.timedelta(microseconds=1)).date())
        out[key] = out.get(key, 0.0) + e
    return out


def test_per_node_day_the_boundaries_add_up_to_measured_times_pue(home):
    rows = _q(home, """
        select f.node, f.date, f.accelerator_j + f.reserve_j + f.host_j + f.facility_j, f.host_j,
               (select sum(measured_energy_j) from attribution.device_day d
                where split_part(d.device_id, '/', 1) = f.node and d.date = f.date),
               s.pue
        from marts.fct_footprint_node_daily f
        join ref.node_sites ns on ns.node = f.node join ref.sites s on s.site = ns.site
        order by all""")
    host = _spool_host_j(home)
    assert {(n, d) for n, d, *_ in rows} == set(host)  # every node-day with host readings, nothing else
    assert len(rows) == 4
    for node, date, parts, host_j, device_j, pue in rows:
        assert host_j == pytest.approx(host[(node, date)], rel=1e-9)
        assert host_j > 0 and device_j > 0
        expected = pue * (device_j + host[(node, date)])
        assert abs(parts - expected) <= 1e-6 * expected, (node, date, parts, expected)


def test_per_request_footprint_sums_to_the_node_day(home):
    rows = _q(home, """
        select f.node, sum(f.shared_j), sum(f.total_j), sum(f.unshared_j), sum(f.requests),
               sum(f.shared_j - f.pooled_out_j + f.pooled_in_j), sum(f.pooled_out_j), sum(f.pooled_in_j),
               (select sum(full_j) from marts.fct_request_footprint r where r.node = f.node),
               (select sum(accelerator_j + host_j + reserve_j + facility_j) from marts.fct_request_footprint r
                where r.node = f.node)
        from marts.fct_footprint_node_daily f group by f.node order by f.node""")
    by_node = {r[0]: r[1:] for r in rows}
    for node, (shared, total, unshared, requests, carried, out, into, req_full, req_parts) in by_node.items():
        assert abs(unshared) <= 1e-6 * total and abs(shared - total) <= 1e-6 * total  # the reserve is shared
        if node == "spare-0":  # serves nothing: its whole footprint goes to the pool, none to its own requests
            assert requests == 0 and req_full is None and out == pytest.approx(total) and total > 0
            assert carried == pytest.approx(0.0, abs=1e-6 * total)
            continue
        assert requests > 0 and out == 0
        assert abs(req_full - carried) <= 1e-6 * carried and abs(req_parts - carried) <= 1e-6 * carried
    # the spare H100 node goes to the H100 requests (same chip, same day), nowhere else
    assert by_node["h100-0"][6] == pytest.approx(by_node["spare-0"][0], rel=1e-9)
    assert by_node["mi300x-0"][6] == 0 and by_node["asic-0"][6] == 0
    # the fleet's whole boundary is on its requests
    (total, req), = _q(home, """select (select sum(total_j) from marts.fct_footprint_node_daily),
                                       (select sum(full_j) from marts.fct_request_footprint)""")
    assert abs(req - total) <= 1e-6 * total


def test_a_spare_device_is_reserve_and_carbon_and_water_follow_the_factors(home):
    (reserve_j, spare_dev_j), = _q(home, """
        select f.reserve_j, (select measured_energy_j from attribution.device_day where device_id = 'mi300x-0/2')
        from marts.fct_footprint_node_daily f where f.node = 'mi300x-0'""")
    assert spare_dev_j > 0 and reserve_j >= spare_dev_j
    # carbon and water are conserved from the node-days (each at its own site's factors) to the requests
    (nd_loc, nd_mkt, nd_ml, rq_loc, rq_mkt, rq_ml), = _q(home, """
        select (select sum(location_gco2e) from marts.fct_footprint_node_daily),
               (select sum(market_gco2e) from marts.fct_footprint_node_daily),
               (select sum(onsite_water_ml) from marts.fct_footprint_node_daily),
               (select sum(full_location_gco2e) from marts.fct_request_footprint),
               (select sum(full_market_gco2e) from marts.fct_request_footprint),
               (select sum(full_water_ml) from marts.fct_request_footprint)""")
    for a, b in ((nd_loc, rq_loc), (nd_mkt, rq_mkt), (nd_ml, rq_ml)):
        assert a > 0 and b == pytest.approx(a, rel=1e-9)
    # each node-day at its site's factors, recomputed here from the factor file and the spool
    factors = yaml.safe_load((home / "footprint.yaml").read_text())["sites"]
    host = _spool_host_hours(home)
    for node, site, kwh, loc, mkt, ml in _q(home, """select f.node, ns.site, f.total_j / 3.6e6, f.location_gco2e,
            f.market_gco2e, f.onsite_water_ml from marts.fct_footprint_node_daily f
            join ref.node_sites ns using (node)"""):
        c, w = factors[site]["carbon"], factors[site]["water"]
        prof = c.get("hourly_profile") or [1.0] * 24
        hours = host[node]
        intensity = c["location_g_per_kwh"] * sum(prof[h] * e for h, e in hours.items()) / sum(hours.values())
        assert loc == pytest.approx(kwh * intensity, rel=1e-9), node
        assert mkt == pytest.approx(kwh * c["market_g_per_kwh"], rel=1e-9)
        assert ml == pytest.approx(kwh * w["onsite_l_per_kwh"] * 1000, rel=1e-9)
    # the H100 requests carry the spare node's cleaner us-central carbon, not us-east's
    (h_mkt, h_kwh, own_kwh), = _q(home, """select sum(r.full_market_gco2e), sum(r.full_j) / 3.6e6,
        (select total_j / 3.6e6 from marts.fct_footprint_node_daily where node = 'h100-0')
        from marts.fct_request_footprint r where r.node = 'h100-0'""")
    spare_kwh = h_kwh - own_kwh
    assert spare_kwh > 0
    assert h_mkt == pytest.approx(own_kwh * factors["us-east"]["carbon"]["market_g_per_kwh"]
                                  + spare_kwh * 20, rel=1e-6)
    (acc, full, acc_only_g, full_g), = _q(home, """select sum(accelerator_wh), sum(full_wh),
        sum(accelerator_market_gco2e), sum(full_market_gco2e) from marts.fct_request_footprint""")
    assert 0 < acc < full and 0 < acc_only_g < full_g
    daily = _q(home, "select sum(requests), sum(full_wh) from marts.fct_footprint_daily")[0]
    assert daily[0] == _q(home, "select count(*) from marts.fct_request_footprint")[0][0]
    assert daily[1] == pytest.approx(full, rel=1e-9)


def _spool_host_hours(home) -> dict:
    """Host joules per node and UTC hour of the interval (the instant before each reading's ts)."""
    tbl = pa.concat_tables([pq.read_table(p) for p in sorted((home / "spool" / "host_samples").rglob("*.parquet"))])
    out: dict = {}
    for node, ts, e in zip(tbl["node"].to_pylist(), tbl["ts"].to_pylist(), tbl["energy_delta_j"].to_pylist()):
        h = (ts - dt.timedelta(microseconds=1)).astimezone(dt.timezone.utc).hour
        out.setdefault(node, {})
        out[node][h] = out[node].get(h, 0.0) + e
    return out


def test_with_the_reserve_not_shared_it_is_reported_and_charged_to_nobody(home, tmp_path):
    """dbt's var footprint_share_reserve=false on a copy of the warehouse: the spare node and the
    spare device stay unshared, the requests carry accelerator + host + their facility overhead."""
    import shutil

    from pipelines.dbt_project import run_dbt

    copy = tmp_path / "home"
    copy.mkdir()
    shutil.copy(home / "warehouse.duckdb", copy / "warehouse.duckdb")
    run_dbt(copy, "run", "--quiet", "--select", "fct_footprint_node_daily", "fct_request_footprint",
            "--vars", "{footprint_share_reserve: false}")
    by_node = {r[0]: r[1:] for r in _q(copy, """select node, pue, accelerator_j, host_j, reserve_j, total_j, shared_j,
        unshared_j, pooled_out_j, pooled_in_j, reserve_shared_j from marts.fct_footprint_node_daily""")}
    spare = by_node["spare-0"]
    assert spare[5] == 0 and spare[6] == pytest.approx(spare[4]) and spare[7] == 0 and spare[4] > 0
    pue, acc, host_j, reserve_j, total, shared, unshared, out, into, reserve_shared = by_node["mi300x-0"]
    assert reserve_j > 0 and reserve_shared == 0 and out == 0 and into == 0
    assert shared == pytest.approx(pue * (acc + host_j), rel=1e-9)
    assert unshared == pytest.approx(pue * reserve_j, rel=1e-9)
    (req_full, req_reserve), = _q(copy, "select sum(full_j), sum(reserve_j) from marts.fct_request_footprint")
    assert req_reserve == 0
    assert req_full == pytest.approx(sum(v[5] for v in by_node.values()), rel=1e-9)
