"""The Dagster code location: `dagster dev` from the repo root loads this (see pyproject)."""
from __future__ import annotations

import os

import dagster as dg
from dagster_dbt import DbtCliResource

from .assets import attribution_tables, dbt_models, dbt_project, prices, raw_tables, site
from .paths import DBT_DIR, Home, dbt_executable, default_home
from .resources import TokenwattHome


def build_definitions(home: str | None = None) -> dg.Definitions:
    home_path = Home(home or default_home())
    os.environ["TOKENWATT_DB"] = str(home_path.db)
    all_job = dg.define_asset_job("tokenwatt_all", selection=dg.AssetSelection.all(),
                                  description="Load, attribute, transform and publish everything")
    load_job = dg.define_asset_job("tokenwatt_load", selection=dg.AssetSelection.groups("ingest", "attribution"))
    transform_job = dg.define_asset_job("tokenwatt_transform", selection=dg.AssetSelection.groups("dbt", "dashboards"))
    return dg.Definitions(
        assets=[raw_tables, prices, attribution_tables, dbt_models, site, *__import__("pipelines.money", fromlist=["ASSETS"]).ASSETS],
        jobs=[all_job, load_job, transform_job],
        schedules=[
            dg.ScheduleDefinition(name="hourly_load", job=load_job, cron_schedule="5 * * * *",
                                  execution_timezone="UTC"),
            dg.ScheduleDefinition(name="daily_transform", job=transform_job, cron_schedule="30 0 * * *",
                                  execution_timezone="UTC"),
        ],
        resources={
            "tokenwatt": TokenwattHome(path=str(home_path.root)),
            "dbt": DbtCliResource(project_dir=dbt_project, profiles_dir=str(DBT_DIR), dbt_executable=dbt_executable()),
        },
    )


defs = build_definitions()
