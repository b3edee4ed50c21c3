"""tokenwatt collectors: device and request telemetry into a Parquet spool.

Plain library code: never imports Dagster. Vendor libraries (pynvml, amdsmi)
are imported lazily inside their backends only.
"""
