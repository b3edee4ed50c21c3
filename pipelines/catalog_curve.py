"""The catalog's power-vs-batch curve as a Dagster asset: ref.catalog_power_curve (warehouse/catalog_curve.py)."""

import dagster as dg

from warehouse.catalog_curve import home_fleet, write_catalog_curve

from pipelines.resources import TokenwattHome


@dg.asset(key=["ref", "catalog_power_curve"], kinds={"duckdb"}, group_name="ingest",
          description="The catalog's active power per device while prefilling and decoding at each batch size, "
                      "for every serving row of the fleet (collectors/catalog/models.yaml and the fleet file)")
def catalog_power_curve(context: dg.AssetExecutionContext, tokenwatt: TokenwattHome) -> dg.MaterializeResult:
    """Write ref.catalog_power_curve from the validated fleet and catalog (a wrong file stops the run)."""
    fleet = home_fleet(tokenwatt.home.fleet_meta)
    con = tokenwatt.connect()
    try:
        rows = write_catalog_curve(con, fleet)
    finally:
        con.close()
    return dg.MaterializeResult(metadata={"rows": rows, "fleet": fleet.name, "source": fleet.source})
