{#- Joules to kilowatt-hours: 1 kWh = 3.6e6 J (collectors/units.py J_PER_KWH, the same constant in Python).
    j_to_kwh('energy_j') renders (energy_j) / 3.6e6; usable inside a larger product, e.g.
    j_to_kwh('active_energy_j') * pue * usd_per_kwh. -#}
{% macro j_to_kwh(expr) -%}
({{ expr }}) / 3.6e6
{%- endmacro %}
