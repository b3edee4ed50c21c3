"""Dagster wiring for tokenwatt: thin resources and assets over collectors/, warehouse/, dashboards/."""
