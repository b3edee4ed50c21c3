"""Constants shared by every floor (Python side; dbt has the same in macros/units.sql)."""
from __future__ import annotations

#: seconds in a UTC day
DAY_S = 86400
#: joules in a kilowatt-hour
J_PER_KWH = 3.6e6
#: relative tolerance of the energy-conservation checks (attributed + idle + unused = measured)
CONSERVATION_TOL_REL = 1e-6
#: the oldest timestamp the loader accepts; anything earlier is quarantined as too far in the past
MIN_TS = "2015-01-01"
