{#- Generic test: per row, the parts add up to the whole within a relative tolerance. -#}
{% test energy_conserved(model, measured, parts, tolerance_rel=0.001) %}
select *
from {{ model }}
where abs(({{ parts | join(' + ') }}) - {{ measured }}) > {{ tolerance_rel }} * greatest(abs({{ measured }}), 1.0)
{% endtest %}
