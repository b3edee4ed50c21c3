select request_id, active_energy_j, idle_share_j, energy_j
from {{ source('attribution', 'request_energy') }}
