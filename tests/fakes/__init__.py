"""Fakes of vendor telemetry libraries, injected at the backends' module boundary."""
