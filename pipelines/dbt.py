"""The dbt models as Dagster assets (dagster-dbt), run against the home's own dbt profile and target.

The manifest comes from the home's target folder (pipelines/dbt_project.py prepares it when the
definitions load); each build writes to that same folder, so dbt's partial parse carries over.
"""
import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, dbt_assets

from warehouse.attribution.run import data_day_range
from warehouse.ingest.days import clear_dirty_days
from warehouse.ingest.window import dbt_window, write_dbt_window

from pipelines.dbt_project import target_path
from pipelines.ingest import window
from pipelines.resources import TokenwattHome


class Translator(DagsterDbtTranslator):
    """Model keys are schema/name (marts/fct_request_energy), in the group "dbt"."""

    def get_asset_spec(self, manifest, unique_id, project):
        spec = super().get_asset_spec(manifest, unique_id, project)
        node = manifest["nodes"].get(unique_id) or {}
        schema = node.get("config", {}).get("schema") or node.get("schema")
        if node.get("resource_type") in ("model", "seed", "snapshot") and schema:
            return spec.replace_attributes(key=dg.AssetKey([schema, node["name"]]), group_name="dbt")
        return spec


# dbt's unit tests check the SQL logic on fixture rows, not the data: they run in the test suite
# (tests/test_dbt_docs.py: dbt test --select test_type:unit), not in every pipeline run
NOT_IN_RUNS = ["--exclude-resource-type", "unit_test"]


def build_dbt_models(manifest_path) -> dg.AssetsDefinition:
    """The dbt multi-asset from the manifest at ``manifest_path`` (keys schema/model, group dbt)."""

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
                args = ["build"]
            args += NOT_IN_RUNS
            write_dbt_window(con, first_last)
        finally:
            con.close()
        context.log.info(f"dbt {' '.join(args)} (run window {win}, rows rebuilt for {first_last or 'every day'})")
        # the home's own target folder (not a fresh one per call), so dbt's partial parse carries over
        try:
            yield from dbt.cli(args, context=context, target_path=target_path(tokenwatt.home)).stream()
        finally:
            con = tokenwatt.connect()
            try:
                write_dbt_window(con, None)  # dbt by hand, without --vars, rebuilds every day again
            finally:
                con.close()
        con = tokenwatt.connect()
        try:
            cleared = clear_dirty_days(con, *(win or ("1900-01-01", "2999-12-31")))
        finally:
            con.close()
        context.log.info(f"dirty days cleared: {cleared}")

    return dbt_models
