{#- A request's energy: attribution.request_energy has one row per request and UTC day it ran on (a
    request that crosses midnight has one row per day); the request's figures are the sums.
    ``where``: an optional filter on the source rows (the windowed marts). -#}
{% macro request_energy_by_request(where=none) -%}
select
    request_id,
    sum(active_energy_j) as active_energy_j,
    sum(idle_share_j) as idle_share_j,
    sum(energy_j) as energy_j,
    sum(prefill_energy_j) as prefill_energy_j,
    sum(decode_energy_j) as decode_energy_j,
    sum(prefill_device_s) as prefill_device_s,
    sum(decode_device_s) as decode_device_s,
from {{ source('attribution', 'request_energy') }}
{%- if where %}
where {{ where }}
{%- endif %}
group by request_id
{%- endmacro %}
