"""The dashboard site asset: the static site built from the marts (dashboards/site.py)."""
import dagster as dg

from pipelines.resources import TokenwattHome


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
