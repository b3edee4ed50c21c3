"""Assets: spool -> raw -> attribution -> dbt marts -> site."""

import json
import os

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, DbtProject, dbt_assets

from warehouse.energy import run_attribution
from warehouse.loader import load_spool
from warehouse.prices import load_prices, write_ref_tables

from .paths import DBT_DIR, ensure_dbt_manifest
from .resources import TokenwattHome

RAW_KEYS = ["device_samples", "requests", "replicas", "quarantine", "manifest"]


@dg.multi_asset(
    specs=[dg.AssetSpec(["raw", k], kinds={"duckdb"}, group_name="ingest",
                        description=f"raw.{k}: spool rows loaded exactly once") for k in RAW_KEYS],
    can_subset=False,
)
def raw_tables(context: dg.AssetExecutionContext, tokenwatt: TokenwattHome):
    """Load every new or changed spool file into DuckDB schema raw (manifest, quarantine)."""
    con = tokenwatt.connect()
    try:
        report = load_spool(con, tokenwatt.home.spool)
        counts = {k: con.execute(f"select count(*) from raw.{k}").fetchone()[0] for k in RAW_KEYS}
    finally:
        con.close()
    context.log.info(f"spool load: {report.as_dict()}")
    for k in RAW_KEYS:
        yield dg.MaterializeResult(
            asset_key=["raw", k],
            metadata={"rows": counts[k], "files_loaded": report.files_loaded,
                      "files_unreadable": report.files_unreadable, "files_duplicate": report.files_duplicate},
        )


REF_KEYS = ["chip_costs", "sites", "tariff_hours", "api_prices", "subscription", "node_sites"]


@dg.multi_asset(
    specs=[dg.AssetSpec(["ref", k], kinds={"duckdb"}, group_name="ingest",
                        description=f"ref.{k} from the validated price file") for k in REF_KEYS],
    can_subset=False,
)
def prices(context: dg.AssetExecutionContext, tokenwatt: TokenwattHome):
    """Prices, PUE, tariffs and revenue rules from warehouse/prices.yaml (validated; a bad file stops the run)."""
    path = os.environ.get("TOKENWATT_PRICES")
    p = load_prices(path)
    sites = {}
    meta = tokenwatt.home.fleet_meta
    if meta.exists():
        sites = json.loads(meta.read_text()).get("node_sites", {})
    con = tokenwatt.connect()
    try:
        write_ref_tables(con, p, sites)
    finally:
        con.close()
    for k in REF_KEYS:
        yield dg.MaterializeResult(asset_key=["ref", k], metadata={"source": p["source"]})


@dg.multi_asset(
    specs=[
        dg.AssetSpec(["attribution", "request_energy"], deps=[["raw", "device_samples"], ["raw", "requests"],
                                                             ["raw", "replicas"]],
                     kinds={"duckdb", "numpy"}, group_name="attribution",
                     description="Joules per request (active and fully loaded) from sorted sweeps"),
        dg.AssetSpec(["attribution", "device_day"], deps=[["raw", "device_samples"], ["raw", "requests"],
                                                         ["raw", "replicas"]],
                     kinds={"duckdb", "numpy"}, group_name="attribution",
                     description="Per device-day: measured, attributed active, shared idle, unused"),
    ],
    check_specs=[dg.AssetCheckSpec("energy_conserved", asset=["attribution", "device_day"],
                                   description="attributed active + shared idle + unused = measured, within 1e-6")],
    can_subset=False,
)
def attribution_tables(context: dg.AssetExecutionContext, tokenwatt: TokenwattHome):
    con = tokenwatt.connect()
    try:
        timings = run_attribution(con)
        worst = con.execute("""
            select coalesce(max(greatest(
                abs(attributed_active_j + shared_idle_j + unused_j - measured_energy_j),
                abs(attributed_active_j - request_side_active_j),
                abs(shared_idle_j - request_side_idle_j)) / greatest(measured_energy_j, 1.0)), 0)
            from attribution.device_day
        """).fetchone()[0]
    finally:
        con.close()
    context.log.info(f"attribution: {timings}")
    yield dg.MaterializeResult(asset_key=["attribution", "request_energy"],
                               metadata={"requests": timings["requests"], "attribute_s": timings["attribute_s"]})
    yield dg.MaterializeResult(asset_key=["attribution", "device_day"], metadata={"device_days": timings["device_days"]})
    yield dg.AssetCheckResult(check_name="energy_conserved", asset_key=["attribution", "device_day"],
                              passed=bool(worst <= 1e-6), metadata={"worst_relative_residual": float(worst)},
                              severity=dg.AssetCheckSeverity.ERROR)


dbt_project = DbtProject(project_dir=DBT_DIR, profiles_dir=DBT_DIR)
ensure_dbt_manifest()


class Translator(DagsterDbtTranslator):
    def get_asset_spec(self, manifest, unique_id, project):
        spec = super().get_asset_spec(manifest, unique_id, project)
        node = manifest["nodes"].get(unique_id) or {}
        schema = node.get("config", {}).get("schema") or node.get("schema")
        if node.get("resource_type") in ("model", "seed", "snapshot") and schema:
            return spec.replace_attributes(key=dg.AssetKey([schema, node["name"]]), group_name="dbt")
        return spec


@dbt_assets(manifest=dbt_project.manifest_path, dagster_dbt_translator=Translator(), name="dbt_models")
def dbt_models(context: dg.AssetExecutionContext, dbt: DbtCliResource):
    yield from dbt.cli(["build"], context=context).stream()


@dg.asset(key=["site"], deps=[["marts", "fct_request_energy"], ["marts", "fct_cost_per_token_daily"],
                             ["marts", "fct_device_energy_daily"], ["marts", "fct_device_power_hourly"],
                             ["marts", "fct_pnl_daily"]],
          kinds={"html"}, group_name="dashboards")
def site(context: dg.AssetExecutionContext, tokenwatt: TokenwattHome) -> dg.MaterializeResult:
    """The static dashboard site (opens from file://, no network)."""
    from dashboards.site import build_site

    result = build_site(tokenwatt.home.db, tokenwatt.home.site)
    return dg.MaterializeResult(metadata={k: v for k, v in result.items() if isinstance(v, (int, float, str))})
