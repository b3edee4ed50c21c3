"""The home travels as an argument: its own dbt profile and target, its own Dagster instance."""
from __future__ import annotations

import os

import pytest

pytestmark = pytest.mark.slow


def test_a_run_leaves_its_history_in_the_homes_dagster_instance(tiny_home):
    import dagster as dg
    from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

    # a fresh instance on the folder, as `dagster dev` with DAGSTER_HOME=HOME/dagster opens it
    with dg.DagsterInstance.from_config(str(tiny_home / "dagster")) as instance:
        runs = instance.get_runs()
        assert runs and runs[0].status == dg.DagsterRunStatus.SUCCESS  # newest first
        for key in (["raw", "requests"], ["ref", "chip_costs"], ["attribution", "device_day"],
                    ["marts", "fct_request_energy"], ["marts", "fct_loss_forecast"], ["site"]):
            event = instance.get_latest_materialization_event(dg.AssetKey(key))
            assert event is not None and event.run_id in {r.run_id for r in runs}, key
        checks = [dg.AssetCheckKey(dg.AssetKey(["attribution", "device_day"]), "energy_conserved"),
                  dg.AssetCheckKey(dg.AssetKey(["raw", "device_samples"]), "freshness_per_node")]
        latest = instance.event_log_storage.get_latest_asset_check_execution_by_key(checks)
        assert set(latest) == set(checks)
        assert all(r.status == AssetCheckExecutionRecordStatus.SUCCEEDED for r in latest.values())
        # every check the run evaluated is stored, the dbt tests on the marts among them
        evaluations = [r.event_log_entry.dagster_event.event_specific_data for r in instance.get_records_for_run(
            runs[0].run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION).records]
        names = {(e.asset_key.to_user_string(), e.check_name) for e in evaluations}
        assert {("raw/device_samples", "completeness_per_device_day"), ("raw/quarantine", "quarantine_rate"),
                ("marts/fct_loss_forecast", "intervals_nest_and_cover_horizon")} <= names
        assert any(k == "marts/fct_device_energy_daily" and n.startswith("energy_conserved") for k, n in names), names


def test_the_home_has_its_own_dbt_profile_and_nothing_went_through_the_environment(tiny_home):
    from pipelines.dbt_project import profile_text

    profile = tiny_home / "dbt" / "profiles.yml"
    assert profile.read_text() == profile_text(tiny_home)
    assert str(tiny_home / "warehouse.duckdb") in profile.read_text()
    target = tiny_home / "dbt" / "target"
    assert (target / "manifest.json").exists() and (target / "partial_parse.msgpack").exists()
    assert (target / "run_results.json").exists()  # the dbt build of the run wrote here, not in dbt/target
    for var in ("TOKENWATT_HOME", "TOKENWATT_DB"):
        assert str(tiny_home) not in os.environ.get(var, ""), var
