-- Warns (does not fail the build) for node-days whose devices report samples but serve no request, or
-- whose requests run on devices that report no samples: often one machine named two ways by the
-- exporter and the request telemetry (collectors/names.py host_name and its alias table).
{{ config(severity='warn') }}
select date, kind, node, reason, rows
from {{ ref('fct_data_quality_daily') }}
where reason in ('devices with samples but no requests', 'requests whose devices report no samples')
