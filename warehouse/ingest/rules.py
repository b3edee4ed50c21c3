"""The loader's validation rules, as data: a table of (kind, field, SQL predicate, reason).

A staged row is refused by the first rule of its kind whose predicate holds; the loader runs the
whole table as one set-based SQL statement over the staged file(s) (see validate.py), so the same
table is what a second engine runs. Predicates see the spool columns plus ``_pdate`` (the file's
``date=`` partition, null for undated files).

Besides these fixed rules, identifier fields (:data:`NAME_FIELDS`) are checked against the one
identifier policy, :func:`collectors.names.name_problem`, value by distinct value (names have few
distinct values), and requests must name a replica the warehouse knows (:data:`REFERENCES`).
"""
from __future__ import annotations

from typing import NamedTuple

from collectors.units import MIN_TS


class Rule(NamedTuple):
    kind: str
    field: str
    predicate: str   # SQL over the staged row; true = refused
    reason: str


#: columns a file must have for its rows to be loaded at all
REQUIRED = {
    "device_samples": {"ts", "device_id", "node", "chip"},
    "requests": {"request_id", "replica_id", "arrival_ts", "finish_ts", "prompt_tokens", "completion_tokens"},
    "replicas": {"replica_id", "node", "device_ids"},
    "server_counters": {"ts", "node", "url", "server"},
    "host_samples": {"ts", "node", "domain"},
}

#: identifier columns checked against collectors.names.name_problem (lists: every element)
NAME_FIELDS = {
    "device_samples": ("node", "device_id"),
    "requests": ("node", "replica_id", "model"),
    "replicas": ("replica_id", "node", "model", "device_ids"),
    "server_counters": ("node", "model", "replica_id"),
    "host_samples": ("node", "domain"),
}
LIST_FIELDS = {"device_ids"}


def _chip_rated_sql() -> str:
    """SQL CASE giving each catalog chip's rated power (null for chips the catalog lacks)."""
    try:
        from collectors.catalog import load_chips

        whens = " ".join(f"when '{k}' then {float(v.rated_power_w)}" for k, v in load_chips().items()
                         if "'" not in k)
    except Exception:  # no catalog: the reported power limit (or 1000 W) bounds power
        whens = ""
    return f"(case chip {whens} else null end)" if whens else "null::double"


#: highest plausible power: twice the larger of the chip's rated power and its reported power limit
POWER_BOUND = (f"2 * coalesce(greatest({_chip_rated_sql()}, power_limit_w), {_chip_rated_sql()}, "
               "power_limit_w, 1000)")
PART_LO = "_pdate - interval 1 day"
PART_HI = "_pdate + interval 2 day"
FUTURE = "now() + interval 1 day"
PAST = f"timestamptz '{MIN_TS}'"


def _nonfinite(c: str) -> str:
    return f"(isnan({c}) or isinf({c}))"


def _rules(kind: str, rows: list[tuple[str, str, str]]) -> list[Rule]:
    return [Rule(kind, f, p, r) for f, p, r in rows]


#: the timestamp rules of every kind whose rows carry one ts
TS_ROWS = [
    ("ts", "ts is null", "missing timestamp"),
    ("ts", f"ts > {FUTURE}", "timestamp in the future"),
    ("ts", f"ts < {PAST}", "timestamp too far in the past"),
    ("ts", f"_pdate is not null and (ts < {PART_LO} or ts >= {PART_HI})",
     "timestamp outside its file's date partition"),
]

RULES: list[Rule] = _rules("device_samples", TS_ROWS + [
    ("device_id", "device_id is null or node is null", "missing device or node"),
    ("chip", "chip is null", "missing chip"),
    ("power_limit_w", f"{_nonfinite('power_limit_w')} or power_limit_w < 0", "power limit not a non-negative number"),
    ("power_w", _nonfinite("power_w"), "power not a finite number"),
    ("power_w", "power_w < 0", "negative power"),
    ("power_w", f"power_w > {POWER_BOUND}", "power above physical bound for chip"),
    ("utilization_pct", f"{_nonfinite('utilization_pct')} or utilization_pct < 0 or utilization_pct > 100",
     "utilization outside 0-100"),
    ("energy_counter_j", _nonfinite("energy_counter_j"), "energy counter not a finite number"),
    ("energy_counter_j", "energy_counter_j < 0", "negative energy counter"),
    ("temperature_c", f"{_nonfinite('temperature_c')} or temperature_c < -40 or temperature_c > 150",
     "implausible temperature"),
    ("memory_used_mib", f"{_nonfinite('memory_used_mib')} or memory_used_mib < 0", "negative memory"),
    ("sm_clock_mhz", f"{_nonfinite('sm_clock_mhz')} or sm_clock_mhz < 0 or sm_clock_mhz > 10000",
     "implausible clock"),
]) + _rules("requests", [
    ("request_id", "request_id is null", "missing request id"),
    ("replica_id", "replica_id is null", "missing replica id"),
    ("prompt_tokens", "prompt_tokens is null", "missing token count"),
    ("prompt_tokens", "prompt_tokens < 0", "negative token count"),
    ("prompt_tokens", "prompt_tokens > 10000000", "implausible token count"),
    ("completion_tokens", "completion_tokens is null", "missing token count"),
    ("completion_tokens", "completion_tokens < 0", "negative token count"),
    ("completion_tokens", "completion_tokens > 10000000", "implausible token count"),
    ("arrival_ts", "arrival_ts is null or finish_ts is null", "missing timestamp"),
    ("finish_ts", "finish_ts < arrival_ts", "finish before arrival"),
    # in epoch microseconds: a timestamptz difference as an interval costs about 1 us a row
    ("finish_ts", "epoch_us(finish_ts) - epoch_us(arrival_ts) > 86400000000", "request lasts more than a day"),
    ("first_token_ts", "first_token_ts < arrival_ts or first_token_ts > finish_ts", "first token outside request"),
    ("arrival_ts", f"finish_ts > {FUTURE}", "timestamp in the future"),
    ("arrival_ts", f"arrival_ts < {PAST}", "timestamp too far in the past"),
    ("finish_ts", f"_pdate is not null and (finish_ts < {PART_LO} or arrival_ts >= {PART_HI})",
     "timestamp outside its file's date partition"),
    ("status", "status is not null and status not in ('ok', 'error', 'aborted')", "unknown status"),
]) + _rules("replicas", [
    ("replica_id", "replica_id is null", "missing replica id"),
    ("device_ids", "device_ids is null or len(list_filter(device_ids, lambda d: d is not null)) = 0",
     "replica without devices"),
    ("valid_from", f"valid_from > {FUTURE}", "timestamp in the future"),
]) + _rules("server_counters", TS_ROWS + [
    ("node", "node is null or url is null", "missing node or url"),
    ("server", "server is null or server not in ('vllm', 'sglang')", "unknown server"),
] + [(c, f"{_nonfinite(c)} or {c} < 0", "counter not a non-negative number")
     for c in ("prompt_tokens_total", "generation_tokens_total", "request_success_total",
               "requests_running", "requests_waiting")]) + _rules("host_samples", TS_ROWS + [
    ("node", "node is null", "missing node"),
    ("domain", "domain is null", "missing domain"),
    ("energy_delta_j", "energy_delta_j is null and power_w is null", "neither energy delta nor power"),
    ("energy_delta_j", f"{_nonfinite('energy_delta_j')} or energy_delta_j < 0", "energy delta not a non-negative number"),
    ("energy_delta_j", "energy_delta_j > 1e6", "energy delta above 1 MJ per reading"),
    ("energy_counter_j", f"{_nonfinite('energy_counter_j')} or energy_counter_j < 0",
     "energy counter not a non-negative number"),
    ("power_w", f"{_nonfinite('power_w')} or power_w < 0 or power_w > 100000", "host power outside 0-100 kW"),
])

#: references checked after the fixed rules and the names: (kind, field, predicate, reason)
REFERENCES: list[Rule] = [
    Rule("requests", "replica_id",
         "replica_id not in (select replica_id from raw.replicas where replica_id is not null)",
         "unknown replica"),
]

#: key columns (a second row with the same key is a duplicate) and the row's day
KEYS = {
    "device_samples": (["device_id", "ts"], "cast(ts as date)"),
    "requests": (["request_id"], "cast(finish_ts as date)"),
    "replicas": (["replica_id", "valid_from"], "cast(valid_from as date)"),
    # a row without a model (the server gave no model_name label) never matches another's key
    "server_counters": (["url", "server", "model", "ts"], "cast(ts as date)"),
    # a host reading is stamped at the end of the interval it measured: its day is the interval's
    # (a reading at 00:00:00 closes the day before), as in stg_raw__host_samples
    "host_samples": (["node", "domain", "ts"], "cast(ts - interval 1 microsecond as date)"),
}

#: the days a file's good rows fall on, as aggregates (first day, last day)
DAY_SPAN_AGG = {
    "device_samples": ("cast(min(ts) as date)", "cast(max(ts) as date)"),
    "requests": ("cast(least(min(arrival_ts), min(scheduled_ts)) as date)", "cast(max(finish_ts) as date)"),
    "replicas": ("cast(min(valid_from) as date)", "cast(max(valid_from) as date)"),
    "server_counters": ("cast(min(ts) as date)", "cast(max(ts) as date)"),
    "host_samples": ("cast(min(ts) - interval 1 microsecond as date)",
                     "cast(max(ts) - interval 1 microsecond as date)"),
}


def rules_for(kind: str) -> list[Rule]:
    return [r for r in RULES if r.kind == kind]
