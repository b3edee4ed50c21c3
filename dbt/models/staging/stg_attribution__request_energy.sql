-- The pipeline attributes per UTC day: attribution.request_energy has one row per request and day
-- it ran on (a request that crosses midnight has one row per day). A request's energy is the sum
-- (macros/request_energy.sql, which the windowed marts share).
{{ request_energy_by_request() }}
