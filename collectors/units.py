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
#: the latest timestamp a collector accepts: later ones are refused as not a real time (the loader
#: refuses anything more than a day ahead of its own clock)
MAX_TS = "2100-01-01"
#: most tokens one request may count (prompt or completion); the loader quarantines more as implausible
MAX_TOKENS = 10_000_000
