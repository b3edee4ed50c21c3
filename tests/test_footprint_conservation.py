"""The whole footprint on a simulated home, through the real pipeline (Dagster, DuckDB, dbt).

Per node-day, accelerator + reserve + host + facility equals PUE x (measured device energy + host
energy) within 1e-6, each side computed from its own inputs (attribution.device_day, the spool's
host_samples files, ref.sites); the per-request footprint adds up to the shared part, which is the
whole on node-days with requests; a spare node's energy is reported, not lost.
"""
from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from collectors.sim.fleet import PRESETS
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
    simulate(path, home, "2026-10-01", 1, 10.0, 3, progress=False)
    assert run_pipeline(home, raise_on_error=True).success
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
               (select sum(full_j) from marts.fct_request_footprint r where r.node = f.node),
               (select sum(accelerator_j + host_j + reserve_j + facility_j) from marts.fct_request_footprint r
                where r.node = f.node)
        from marts.fct_footprint_node_daily f group by f.node order by f.node""")
    by_node = {r[0]: r[1:] for r in rows}
    for node, (shared, total, unshared, requests, req_full, req_parts) in by_node.items():
        if node == "spare-0":  # serves nothing: its whole footprint is reported as unshared
            assert requests == 0 and shared == 0 and req_full is None and unshared == pytest.approx(total)
            assert total > 0
            continue
        assert requests > 0
        assert abs(req_full - total) <= 1e-6 * total and abs(req_parts - total) <= 1e-6 * total
        assert abs(unshared) <= 1e-6 * total


def test_a_spare_device_is_reserve_and_carbon_and_water_follow_the_factors(home):
    (reserve_j, spare_dev_j), = _q(home, """
        select f.reserve_j, (select measured_energy_j from attribution.device_day where device_id = 'mi300x-0/2')
        from marts.fct_footprint_node_daily f where f.node = 'mi300x-0'""")
    assert spare_dev_j > 0 and reserve_j >= spare_dev_j
    for site, kwh, loc, mkt, water, fl, fm, fw in _q(home, """
            select ns.site, sum(r.full_j) / 3.6e6, sum(r.full_location_gco2e), sum(r.full_market_gco2e),
                   sum(r.full_water_ml), any_value(f.location_g_per_kwh), any_value(f.market_g_per_kwh),
                   any_value(f.onsite_l_per_kwh)
            from marts.fct_request_footprint r join ref.node_sites ns using (node)
            join ref.site_footprint f on f.site = ns.site group by ns.site"""):
        assert loc == pytest.approx(kwh * fl, rel=1e-9) and mkt == pytest.approx(kwh * fm, rel=1e-9)
        assert water == pytest.approx(kwh * fw * 1000, rel=1e-9)
    (acc, full, acc_only_g, full_g), = _q(home, """select sum(accelerator_wh), sum(full_wh),
        sum(accelerator_market_gco2e), sum(full_market_gco2e) from marts.fct_request_footprint""")
    assert 0 < acc < full and 0 < acc_only_g < full_g
    daily = _q(home, "select sum(requests), sum(full_wh) from marts.fct_footprint_daily")[0]
    assert daily[0] == _q(home, "select count(*) from marts.fct_request_footprint")[0][0]
    assert daily[1] == pytest.approx(full, rel=1e-9)
