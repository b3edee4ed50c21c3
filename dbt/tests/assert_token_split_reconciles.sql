-- Input (prefill) + output (decode) cost, usage cost and energy equal each request's blended
-- figures, and the input share is a share. Returns the offending requests.
select request_id, cost_usd, input_cost_usd, output_cost_usd, input_share
from {{ ref('fct_request_energy') }}
where input_share < 0 or input_share > 1
   or abs(input_cost_usd + output_cost_usd - cost_usd) > 1e-12 + 1e-9 * abs(cost_usd)
   or abs(input_usage_cost_usd + output_usage_cost_usd - usage_cost_usd) > 1e-12 + 1e-9 * abs(usage_cost_usd)
   or abs(input_energy_j + output_energy_j - energy_j) > 1e-9 + 1e-9 * abs(energy_j)
   or abs(input_revenue_usd + output_revenue_usd - revenue_usd) > 1e-12 + 1e-9 * abs(revenue_usd)
