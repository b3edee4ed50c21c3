"""Carbon and water factors into the warehouse: ``ref.site_footprint`` and ``ref.site_carbon_hours``.

The dbt footprint models (dbt/models/marts/fct_footprint_*.sql, fct_request_footprint.sql) read
them beside ``ref.sites`` (the PUE, from the price file: not repeated here). A site the price file
or the fleet names but the footprint file does not gets the footprint file's ``default`` factors in
SQL (``coalesce`` on the site name), so no site is silently carbon-free.
"""
from __future__ import annotations

import duckdb

from warehouse.footprint.factors import SiteFactors


def write_footprint_ref(con: duckdb.DuckDBPyConnection, factors: dict[str, SiteFactors]) -> None:
    """Replace the footprint ref tables from validated factors (one transaction)."""
    con.execute("create schema if not exists ref")
    con.execute("begin")
    try:
        con.execute("""create or replace table ref.site_footprint (site varchar primary key,
            location_g_per_kwh double, market_g_per_kwh double, onsite_l_per_kwh double,
            source_l_per_kwh double, carbon_source varchar, water_source varchar)""")
        con.executemany("insert into ref.site_footprint values (?, ?, ?, ?, ?, ?, ?)",
                        [(f.site, f.location_g_per_kwh, f.market_g_per_kwh, f.onsite_l_per_kwh,
                          f.source_l_per_kwh, f.carbon_source, f.water_source) for f in factors.values()])
        con.execute("""create or replace table ref.site_carbon_hours (site varchar, hour integer,
            location_g_per_kwh double, primary key (site, hour))""")
        con.executemany("insert into ref.site_carbon_hours values (?, ?, ?)",
                        [(f.site, h, f.location_g_per_kwh_at(h)) for f in factors.values() for h in range(24)])
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise
