"""Static dashboard site for tokenwatt (see dashboards/site.py). Never imports dagster."""
