-- Per-request energy and cost over every day: the SQL is macros/requests_costed.sql, which
-- marts.fct_request_energy runs over the run's day window.
{{ requests_costed() }}
