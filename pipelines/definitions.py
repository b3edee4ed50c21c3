"""The Dagster code location: `dagster dev -m pipelines.definitions` loads this (see the Makefile).

Importing this module does nothing but define functions: ``defs`` is a lazy loader
(``@dg.definitions``) that Dagster calls when it loads the code location. Only then are the spool's
days read (the daily partitions) and the dbt manifest prepared (``dbt parse`` when it is stale).
"""
from __future__ import annotations

import dagster as dg
from dagster_dbt import DbtCliResource

from collectors.home import Home

from pipelines.attribution import build_attribution_tables
from pipelines.dbt import build_dbt_models
from pipelines.dbt_project import DBT_DIR, dbt_executable, default_home, ensure_dbt_manifest, profiles_dir
from pipelines.catalog_curve import catalog_power_curve
from pipelines.footprint import footprint_factors
from pipelines.ingest import PARTITIONED_JOB, build_raw_tables, build_spool_sensor, daily_partitions
from pipelines.money import ASSETS as MONEY_ASSETS
from pipelines.resources import TokenwattHome
from pipelines.site import site


def build_definitions(home: str | None = None) -> dg.Definitions:
    """Every asset, job, sensor and schedule against ``home`` (default: :func:`default_home`); the home
    travels in the resources (``tokenwatt``, and ``dbt`` with the home's profile), never the environment."""
    home_path = Home(home or default_home())
    daily = daily_partitions(home_path)
    # the load and dbt follow the run's day window; the attribution is partitioned by day (pipelines/ingest.py)
    raw_tables, attribution_tables = build_raw_tables(), build_attribution_tables(daily)
    dbt_models = build_dbt_models(ensure_dbt_manifest(home_path))
    all_job = dg.define_asset_job("tokenwatt_all", selection=dg.AssetSelection.all(),
                                  description="Load, attribute, transform and publish everything")
    load_job = dg.define_asset_job("tokenwatt_load", selection=dg.AssetSelection.groups("ingest", "attribution"))
    transform_job = dg.define_asset_job("tokenwatt_transform", selection=dg.AssetSelection.groups("dbt", "money", "dashboards"))
    # what the spool sensor launches: the partitions of the days it found, and everything downstream
    partitioned_job = dg.define_asset_job(PARTITIONED_JOB, selection=dg.AssetSelection.all(), partitions_def=daily,
                                          description="Load, attribute and transform a window of UTC days "
                                                      "(one run per window), then refresh what depends on them")
    return dg.Definitions(
        assets=[raw_tables, attribution_tables, dbt_models, site, *MONEY_ASSETS, footprint_factors,
                catalog_power_curve],
        jobs=[all_job, load_job, transform_job, partitioned_job],
        sensors=[build_spool_sensor(home_path, PARTITIONED_JOB, daily)],
        schedules=[
            dg.ScheduleDefinition(name="hourly_load", job=load_job, cron_schedule="5 * * * *",
                                  execution_timezone="UTC"),
            dg.ScheduleDefinition(name="daily_transform", job=transform_job, cron_schedule="30 0 * * *",
                                  execution_timezone="UTC"),
        ],
        resources={
            "tokenwatt": TokenwattHome(path=str(home_path.root)),
            "dbt": DbtCliResource(project_dir=str(DBT_DIR), profiles_dir=str(profiles_dir(home_path)),
                                  dbt_executable=dbt_executable()),
        },
    )


@dg.definitions
def defs() -> dg.Definitions:
    """The code location of `dagster dev` / `make dev`: the home named by TOKENWATT_HOME (default ./data)."""
    return build_definitions()
