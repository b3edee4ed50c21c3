"""The attribution assets: per-request joules, device-days and clock skew, partitioned by UTC day.

The logic is in warehouse/attribution/ (no Dagster there). Each run attributes its window of days
(one run over many days, ``BackfillPolicy.single_run``) and replaces exactly those days' rows.
"""
import dagster as dg

from collectors.units import CONSERVATION_TOL_REL
from warehouse.attribution.run import run_attribution_days

from pipelines.ingest import window
from pipelines.resources import TokenwattHome

SINGLE_RUN = dg.BackfillPolicy.single_run()


def build_attribution_tables(partitions_def: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    """The attribution multi-asset, partitioned by ``partitions_def`` (UTC days)."""

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
            dg.AssetSpec(["attribution", "power_model"], deps=[["raw", "device_samples"], ["raw", "requests"],
                                                              ["raw", "replicas"]],
                         kinds={"duckdb", "numpy"}, group_name="attribution",
                         description="Per device-day: the power model learned from the fleet's own data (W per "
                                     "prefill and per decode batch bin), its fit and any fallback reason"),
        ],
        check_specs=[dg.AssetCheckSpec("energy_conserved", asset=["attribution", "device_day"],
                                       description="attributed active + shared idle + unused = measured, within "
                                                   f"{CONSERVATION_TOL_REL:g} (relative)")],
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
            fits = con.execute("""select count(*), count(fallback_reason) from attribution.power_model
                                  where date between ? and ?""", [timings["first"], timings["last"]]).fetchone()
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
        yield dg.MaterializeResult(asset_key=["attribution", "power_model"],
                                   metadata={"device_days": int(fits[0]), "fallbacks": int(fits[1])})
        yield dg.AssetCheckResult(check_name="energy_conserved", asset_key=["attribution", "device_day"],
                                  passed=bool(worst <= CONSERVATION_TOL_REL), metadata={"worst_relative_residual": float(worst)},
                                  severity=dg.AssetCheckSeverity.ERROR)

    return attribution_tables
