"""Assets: spool -> raw -> attribution -> dbt marts -> site.

The attribution is partitioned by UTC day and the load and dbt follow the run's day window
(pipelines/ingest.py); a run over many days runs once over the whole window. Run without a
partition (plain ``dg.materialize``), they cover every day with data.
"""

import json
import os

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, dbt_assets

from warehouse.attribution.run import data_day_range, run_attribution_days
from warehouse.ingest.window import dbt_window, dbt_window_vars
from warehouse.ingest.days import clear_dirty_days
from warehouse.ingest.load import load_spool
from warehouse.money.prices import load_prices, write_ref_tables

from pipelines.ingest import RAW_CHECKS, evaluate_raw_checks, window
from pipelines.dbt_project import target_path
from pipelines.resources import TokenwattHome

RAW_KEYS = ["device_samples", "requests", "replicas", "quarantine", "manifest"]
SINGLE_RUN = dg.BackfillPolicy.single_run()


def _raw_tables():
    @dg.multi_asset(
        name="raw_tables",
        specs=[dg.AssetSpec(["raw", k], kinds={"duckdb"}, group_name="ingest",
                            description=f"raw.{k}: spool rows loaded exactly once") for k in RAW_KEYS],
        check_specs=RAW_CHECKS,
        can_subset=False,
    )
    def raw_tables(context: dg.AssetExecutionContext, tokenwatt: TokenwattHome):
        """Load the new or changed spool files of the run's days (and undated files) into DuckDB schema
        raw (manifest, quarantine, dirty days); then check freshness, completeness and quarantine rate."""
        win = window(context)
        con = tokenwatt.connect()
        try:
            report = load_spool(con, tokenwatt.home.spool, dates=win, on_batch=context.log.info)
            counts = {k: con.execute(f"select count(*) from raw.{k}").fetchone()[0] for k in RAW_KEYS}
            first, last = win or (data_day_range(con) or (None, None))
            checks = list(evaluate_raw_checks(context, con, tokenwatt.home, str(first), str(last))) \
                if first is not None else []
        finally:
            con.close()
        context.log.info(f"spool load: {report.as_dict()}")
        for k in RAW_KEYS:
            yield dg.MaterializeResult(
                asset_key=["raw", k],
                metadata={"rows": counts[k], "files_loaded": report.files_loaded,
                          "files_unreadable": report.files_unreadable, "files_duplicate": report.files_duplicate,
                          "files_rejected": report.files_rejected, "files_failed": report.files_failed,
                          "dirty_days": len(report.dirty_dates),
                          "window": f"{win[0]}..{win[1]}" if win else "every day"},
            )
        if not checks:  # nothing loaded at all: the checks have nothing to look at
            checks = [dg.AssetCheckResult(check_name=c.name, asset_key=c.asset_key, passed=False,
                                          severity=dg.AssetCheckSeverity.ERROR,
                                          metadata={"reason": "no data in the warehouse"}) for c in RAW_CHECKS]
        yield from checks

    return raw_tables


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


def _attribution_tables(partitions_def):
    @dg.multi_asset(
        name="attribution_tables",
        specs=[
            dg.AssetSpec(["attribution", "request_energy"], deps=[["raw", "device_samples"], ["raw", "requests"],
                                                                 ["raw", "replicas"]],
                         kinds={"duckdb", "numpy"}, group_name="attribution",
                         description="Joules per request and UTC day it ran on (active and fully loaded)"),
            dg.AssetSpec(["attribution", "device_day"], deps=[["raw", "device_samples"], ["raw", "requests"],
                                                             ["raw", "replicas"]],
                         kinds={"duckdb", "numpy"}, group_name="attribution",
                         description="Per device-day: measured, attributed active, shared idle, unused"),
            dg.AssetSpec(["attribution", "clock_skew"], deps=[["raw", "device_samples"], ["raw", "requests"],
                                                             ["raw", "replicas"]],
                         kinds={"duckdb", "numpy"}, group_name="attribution",
                         description="Per node-day: estimated offset of the device samples' clock from the "
                                     "requests' (s), its correlation, and whether the attribution corrected it"),
        ],
        check_specs=[dg.AssetCheckSpec("energy_conserved", asset=["attribution", "device_day"],
                                       description="attributed active + shared idle + unused = measured, within 1e-6")],
        partitions_def=partitions_def,
        backfill_policy=SINGLE_RUN,
        can_subset=False,
    )
    def attribution_tables(context: dg.AssetExecutionContext, tokenwatt: TokenwattHome):
        """Attribute the run's UTC days (each day on its own) and replace exactly those days' rows."""
        win = window(context)
        con = tokenwatt.connect()
        try:
            timings = run_attribution_days(con, *(win or (None, None)))
            worst = con.execute("""
                select coalesce(max(greatest(
                    abs(attributed_active_j + shared_idle_j + unused_j - measured_energy_j),
                    abs(attributed_active_j - request_side_active_j),
                    abs(shared_idle_j - request_side_idle_j)) / greatest(measured_energy_j, 1.0)), 0)
                from attribution.device_day where date between ? and ?
            """, [timings["first"], timings["last"]]).fetchone()[0]
        finally:
            con.close()
        context.log.info(f"attribution: {timings}")
        yield dg.MaterializeResult(asset_key=["attribution", "request_energy"],
                                   metadata={"request_day_rows": timings["request_day_rows"],
                                             "attribute_s": timings["attribute_s"],
                                             "days": f"{timings['first']}..{timings['last']}"})
        yield dg.MaterializeResult(asset_key=["attribution", "device_day"],
                                   metadata={"device_days": timings["device_days"]})
        yield dg.MaterializeResult(asset_key=["attribution", "clock_skew"],
                                   metadata={"node_days_corrected": timings.get("skew_corrected", 0),
                                             "clock_skew_s": timings.get("clock_skew_s", 0.0)})
        yield dg.AssetCheckResult(check_name="energy_conserved", asset_key=["attribution", "device_day"],
                                  passed=bool(worst <= 1e-6), metadata={"worst_relative_residual": float(worst)},
                                  severity=dg.AssetCheckSeverity.ERROR)

    return attribution_tables


class Translator(DagsterDbtTranslator):
    def get_asset_spec(self, manifest, unique_id, project):
        spec = super().get_asset_spec(manifest, unique_id, project)
        node = manifest["nodes"].get(unique_id) or {}
        schema = node.get("config", {}).get("schema") or node.get("schema")
        if node.get("resource_type") in ("model", "seed", "snapshot") and schema:
            return spec.replace_attributes(key=dg.AssetKey([schema, node["name"]]), group_name="dbt")
        return spec


def _dbt_models(manifest_path):
    @dbt_assets(manifest=manifest_path, dagster_dbt_translator=Translator(), name="dbt_models")
    def dbt_models(context: dg.AssetExecutionContext, dbt: DbtCliResource, tokenwatt: TokenwattHome):
        """dbt build for the run's days: the incremental marts replace those days (widened to the arrival
        days of requests that ran into them); a run over every day with data rebuilds everything."""
        win = window(context)
        con = tokenwatt.connect()
        try:
            span = data_day_range(con)
            if win is None or span is None or (win[0] <= str(span[0]) and win[1] >= str(span[1])):
                args, first_last = ["build", "--full-refresh"], None
            else:
                first_last = dbt_window(con, *win)
                args = ["build", "--vars", json.dumps(dbt_window_vars(*first_last))]
        finally:
            con.close()
        context.log.info(f"dbt {' '.join(args)} (run window {win}, rows rebuilt for {first_last or 'every day'})")
        # the home's own target folder (not a fresh one per call), so dbt's partial parse carries over
        yield from dbt.cli(args, context=context, target_path=target_path(tokenwatt.home)).stream()
        con = tokenwatt.connect()
        try:
            cleared = clear_dirty_days(con, *(win or ("1900-01-01", "2999-12-31")))
        finally:
            con.close()
        context.log.info(f"dirty days cleared: {cleared}")

    return dbt_models


def build_partitioned_assets(partitions_def, dbt_manifest) -> list:
    """The load, attribution and dbt assets: attribution partitioned by ``partitions_def`` (daily, one
    run per window); the load and dbt follow the run's window (see pipelines/ingest.py). Built when
    the definitions load (pipelines/definitions.py), never at import."""
    return [_raw_tables(), _attribution_tables(partitions_def), _dbt_models(dbt_manifest)]


@dg.asset(key=["site"], deps=[["marts", "fct_request_energy"], ["marts", "fct_cost_per_token_daily"],
                             ["marts", "fct_device_energy_daily"], ["marts", "fct_device_power_hourly"],
                             ["marts", "fct_pnl_daily"], ["marts", "fct_loss_forecast"],
                             ["marts", "fct_fleet_scale_projection"]],
          kinds={"html"}, group_name="dashboards")
def site(context: dg.AssetExecutionContext, tokenwatt: TokenwattHome) -> dg.MaterializeResult:
    """The static dashboard site (opens from file://, no network)."""
    from dashboards.site import build_site

    result = build_site(tokenwatt.home.db, tokenwatt.home.site)
    return dg.MaterializeResult(metadata={k: v for k, v in result.items() if isinstance(v, (int, float, str))})
