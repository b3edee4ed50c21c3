"""The carbon and water factors as Dagster assets: ref.site_footprint and ref.site_carbon_hours."""

import os

import dagster as dg

from warehouse.footprint.factors import load_footprint
from warehouse.footprint.ref import write_footprint_ref

from pipelines.resources import TokenwattHome

FOOTPRINT_REF_KEYS = ["site_footprint", "site_carbon_hours"]


@dg.multi_asset(
    specs=[dg.AssetSpec(["ref", k], kinds={"duckdb"}, group_name="ingest",
                        description=f"ref.{k} from the validated carbon and water file") for k in FOOTPRINT_REF_KEYS],
    can_subset=False,
)
def footprint_factors(context: dg.AssetExecutionContext, tokenwatt: TokenwattHome):
    """Carbon intensity and water use per site from warehouse/footprint/footprint.yaml (or
    TOKENWATT_FOOTPRINT); a wrong file stops the run with a message naming the field."""
    factors = load_footprint(os.environ.get("TOKENWATT_FOOTPRINT"))
    con = tokenwatt.connect()
    try:
        write_footprint_ref(con, factors)
    finally:
        con.close()
    for k in FOOTPRINT_REF_KEYS:
        yield dg.MaterializeResult(asset_key=["ref", k], metadata={"sites": len(factors)})
