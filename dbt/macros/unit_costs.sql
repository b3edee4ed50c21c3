{#- A ratio of sums that is null (not a division error) when the denominator sums to 0:
    per_unit('cost_usd', 'total_tokens', 1e6) renders sum(cost_usd) / nullif(sum(total_tokens), 0) * 1e6
    (USD per million tokens). The money marts write every per-token figure with it. -#}
{% macro per_unit(num, den, scale=1) -%}
sum({{ num }}) / nullif(sum({{ den }}), 0){% if scale != 1 %} * {{ scale }}{% endif %}
{%- endmacro %}
