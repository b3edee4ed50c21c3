"""The spool's record schemas: the contract between collectors and the warehouse.

Every backend (simulated, NVML, AMD SMI, Prometheus exporters, inference-server
request logs) writes exactly these columns. Units are in the column names;
timestamps are UTC with microsecond precision.
"""
from __future__ import annotations

import pyarrow as pa

TS = pa.timestamp("us", tz="UTC")

#: one row per device per sampling instant
DEVICE_SAMPLES = pa.schema(
    [
        ("ts", TS),                      # collector clock at read time, UTC
        ("node", pa.string()),           # host name
        ("device_id", pa.string()),      # fleet-unique: "<node>/<index>"
        ("device_index", pa.int32()),
        ("device_uuid", pa.string()),
        ("chip", pa.string()),           # catalog id: nvidia-h100-sxm, amd-mi300x, custom-asic ...
        ("vendor", pa.string()),         # nvidia | amd | custom
        ("power_w", pa.float64()),       # as the vendor reports it (see power_kind)
        ("power_kind", pa.string()),     # avg_1s | instant | avg_window | unknown
        ("energy_counter_j", pa.float64()),  # cumulative counter in joules (null if none); may reset/wrap
        ("utilization_pct", pa.float64()),
        ("memory_used_mib", pa.float64()),
        ("temperature_c", pa.float64()),
        ("sm_clock_mhz", pa.float64()),
        ("power_limit_w", pa.float64()),
        ("source", pa.string()),         # sim | nvml | amdsmi | dcgm-exporter | amd-exporter
    ]
)

#: one row per finished (or failed) inference request; names follow vLLM's
#: request stats (arrival/queued/scheduled/first_token/last_token) and the
#: OpenAI usage object (prompt_tokens, completion_tokens)
REQUESTS = pa.schema(
    [
        ("request_id", pa.string()),
        ("node", pa.string()),
        ("replica_id", pa.string()),
        ("model", pa.string()),
        ("task", pa.string()),           # chat translate summarize code-generate code-optimize code-fix
        ("language", pa.string()),       # ISO 639-1: en fr de es ja zh ...
        ("tier", pa.string()),           # free | subscription | api
        ("arrival_ts", TS),
        ("scheduled_ts", TS),            # prefill start (vLLM scheduled_ts); null -> arrival_ts
        ("first_token_ts", TS),
        ("finish_ts", TS),
        ("prompt_tokens", pa.int64()),
        ("completion_tokens", pa.int64()),
        ("status", pa.string()),         # ok | error | aborted
    ]
)

#: which devices serve a replica (written by the simulator, or by a deployment
#: hook on a real fleet); a replica spans one or more devices of one node
REPLICAS = pa.schema(
    [
        ("replica_id", pa.string()),
        ("node", pa.string()),
        ("model", pa.string()),
        ("chip", pa.string()),
        ("device_ids", pa.list_(pa.string())),  # device_id list (a list: names may hold any separator)
        ("valid_from", TS),
    ]
)

#: one row per host energy domain per sampling instant (collectors/rapl.py, node_exporter, simulator)
HOST_SAMPLES = pa.schema(
    [
        ("ts", TS),
        ("node", pa.string()),
        ("domain", pa.string()),         # package-0 | dram-0 | psys | node (whole-node power)
        ("energy_counter_j", pa.float64()),  # the raw cumulative counter in joules (null if none)
        ("counter_wrap_j", pa.float64()),    # the counter's range: it wraps to 0 past this
        ("energy_delta_j", pa.float64()),    # joules since the collector's previous reading (wraps added back)
        ("power_w", pa.float64()),           # instantaneous power where the source gives power, not energy
        ("source", pa.string()),             # rapl | node-exporter | sim
    ]
)

#: one row per inference server (and model) per scrape of its own metrics (``vllm:*``, ``sglang:*``;
#: collectors/exposition.py): the cumulative counters the completeness check compares with the
#: request telemetry
SERVER_COUNTERS = pa.schema(
    [
        ("ts", TS),                               # scrape time, UTC
        ("node", pa.string()),
        ("url", pa.string()),                     # the scraped endpoint
        ("server", pa.string()),                  # vllm | sglang
        ("model", pa.string()),                   # model_name label (null if none)
        ("prompt_tokens_total", pa.float64()),    # cumulative counters since server start
        ("generation_tokens_total", pa.float64()),
        ("request_success_total", pa.float64()),
        ("requests_running", pa.float64()),       # gauges at scrape time
        ("requests_waiting", pa.float64()),
        # the replica the server is: a tokenwatt_replica_id (else replica_id) label on its series, such
        # as a Prometheus target label; null when none (the completeness check then maps the server's
        # node and model to a replica through the replica map)
        ("replica_id", pa.string()),
    ]
)

KINDS = {
    "device_samples": DEVICE_SAMPLES,
    "requests": REQUESTS,
    "replicas": REPLICAS,
    "host_samples": HOST_SAMPLES,
    "server_counters": SERVER_COUNTERS,
}

TASKS = ("chat", "translate", "summarize", "code-generate", "code-optimize", "code-fix")
TIERS = ("free", "subscription", "api")
