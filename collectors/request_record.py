"""One request-log record (JSON object) -> one REQUESTS row, every field checked.

The record format is in docs/request-log.md. A record that cannot become a row raises
:class:`RequestLogError` naming the field: a required field missing, a name outside the identifier
policy (collectors/names.py), a token count that is not a whole number within 0..``MAX_TOKENS``
(NaN and Inf included), a time that is not a real UTC time between ``MIN_TS`` and ``MAX_TS``
(epoch 1e20, year 9999), times that go backwards, or a status, task or tier outside its list.
Nothing else is raised: a record is either a row or a reason.
"""
from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Any, Mapping

from collectors.names import host_name, name_problem
from collectors.schema import TASKS, TIERS
from collectors.units import MAX_TOKENS, MAX_TS, MIN_TS

STATUSES = ("ok", "error", "aborted")

#: REQUESTS column -> accepted JSON field names, first present wins
TIME_FIELDS: dict[str, tuple[str, ...]] = {
    "arrival_ts": ("arrival_time",),
    "scheduled_ts": ("scheduled_time", "first_scheduled_time"),
    "first_token_ts": ("first_token_time",),
    "finish_ts": ("finished_time", "last_token_time"),
}
_TS_LO = datetime.fromisoformat(MIN_TS).replace(tzinfo=timezone.utc)
_TS_HI = datetime.fromisoformat(MAX_TS).replace(tzinfo=timezone.utc)


class RequestLogError(ValueError):
    """A request-log record that cannot become a REQUESTS row; ``field`` names the field at fault."""

    def __init__(self, message: str, field: str = ""):
        super().__init__(message)
        self.field = field


def _epoch_to_utc(value: float, field_name: str) -> datetime:
    if not math.isfinite(value):
        raise RequestLogError(f"{field_name}: not a finite number: {value!r}", field_name)
    if not _TS_LO.timestamp() <= value < _TS_HI.timestamp():
        raise RequestLogError(f"{field_name}: {value!r} is not a time between {MIN_TS} and {MAX_TS}", field_name)
    return datetime.fromtimestamp(float(value), tz=timezone.utc)


def _iso_to_utc(value: str, field_name: str) -> datetime:
    text = value.strip()
    try:
        parsed = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
    except ValueError:
        try:
            number = float(text)
        except ValueError:
            raise RequestLogError(f"{field_name}: not epoch seconds or ISO-8601: {value!r:.80}", field_name) from None
        return _epoch_to_utc(number, field_name)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    try:
        parsed = parsed.astimezone(timezone.utc)
    except (OverflowError, ValueError):
        raise RequestLogError(f"{field_name}: {value!r:.80} is not a time between {MIN_TS} and {MAX_TS}",
                              field_name) from None
    if not _TS_LO <= parsed < _TS_HI:
        raise RequestLogError(f"{field_name}: {value!r:.80} is not a time between {MIN_TS} and {MAX_TS}", field_name)
    return parsed


def parse_time(value: Any, field_name: str = "time") -> datetime | None:
    """Epoch seconds or ISO-8601 (UTC if naive) -> aware UTC datetime; None stays None."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise RequestLogError(f"{field_name}: expected epoch seconds or ISO-8601, got {value!r}", field_name)
    if isinstance(value, (int, float)):
        return _epoch_to_utc(value, field_name)
    if isinstance(value, str):
        return _iso_to_utc(value, field_name)
    raise RequestLogError(f"{field_name}: expected epoch seconds or ISO-8601, got {type(value).__name__}", field_name)


def _tokens(record: Mapping[str, Any], name: str) -> int:
    usage = record.get("usage")
    value = usage.get(name) if isinstance(usage, Mapping) and name in usage else record.get(name)
    where = f"usage.{name}"
    if value is None:
        raise RequestLogError(f"{where} is required", where)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or \
            (isinstance(value, float) and not (math.isfinite(value) and value.is_integer())) or value < 0:
        raise RequestLogError(f"{where}: expected a non-negative integer, got {value!r:.80}", where)
    if value > MAX_TOKENS:
        raise RequestLogError(f"{where}: {value!r:.40} is more than {MAX_TOKENS} tokens", where)
    return int(value)


def _optional_str(record: Mapping[str, Any], name: str) -> str | None:
    """A name field under the identifier policy; an integer is taken as its decimal text."""
    value = record.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    problem = name_problem(value)
    if problem:
        raise RequestLogError(f"{name}: not a usable name ({problem}): {value!r:.80}", name)
    return value


def _times(record: Mapping[str, Any]) -> dict[str, datetime | None]:
    times: dict[str, datetime | None] = {}
    for column, names in TIME_FIELDS.items():
        raw = next((record[n] for n in names if record.get(n) is not None), None)
        times[column] = parse_time(raw, names[0])
    parse_time(record.get("queued_time"), "queued_time")  # validated, not stored
    if times["arrival_ts"] is None:
        raise RequestLogError("arrival_time is required", "arrival_time")
    if times["finish_ts"] is None:
        raise RequestLogError("finished_time is required", "finished_time")
    previous_name, previous = "arrival_time", times["arrival_ts"]
    for column in ("scheduled_ts", "first_token_ts", "finish_ts"):
        current = times[column]
        if current is not None:
            if current < previous:
                raise RequestLogError(f"{TIME_FIELDS[column][0]} is before {previous_name}", TIME_FIELDS[column][0])
            previous_name, previous = TIME_FIELDS[column][0], current
    return times


def _choice(record: Mapping[str, Any], name: str, choices: tuple[str, ...], default: str | None = None) -> str | None:
    value = _optional_str(record, name) or default
    if value is not None and value not in choices:
        raise RequestLogError(f"{name}: expected one of {choices}, got {value!r}", name)
    return value


def record_to_row(record: Mapping[str, Any], default_node_name: str | None = None,
                  aliases: Mapping[str, str] | None = None) -> dict[str, Any]:
    """One request-log record -> one REQUESTS row dict. Raises :class:`RequestLogError`.

    The node (the record's, else ``default_node_name``) goes through the one host-name policy,
    :func:`collectors.names.host_name` with ``aliases``: an FQDN or upper-case name becomes the
    short node name the device exporters' rows carry, so a machine's devices and requests join."""
    if not isinstance(record, Mapping):
        raise RequestLogError(f"expected a JSON object, got {type(record).__name__}")
    request_id = _optional_str(record, "request_id")
    if request_id is None:
        raise RequestLogError("request_id is required", "request_id")
    model = _optional_str(record, "model")
    if model is None:
        raise RequestLogError("model is required", "model")
    times = _times(record)
    status = _choice(record, "status", STATUSES, "ok")
    task = _choice(record, "task", TASKS)
    tier = _choice(record, "tier", TIERS)
    node = _optional_str(record, "node") or default_node_name
    if node is None:
        raise RequestLogError("node is required (in the record or as the logger's node)", "node")
    node = host_name(node, aliases)
    problem = name_problem(node)
    if problem:  # an alias table never maps to a bad name, but a host name may cut to nothing
        raise RequestLogError(f"node: not a usable name after host-name normalisation ({problem})", "node")
    return {
        "request_id": request_id,
        "node": node,
        "replica_id": _optional_str(record, "replica_id"),
        "model": model,
        "task": task,
        "language": _optional_str(record, "language"),
        "tier": tier,
        **times,
        "prompt_tokens": _tokens(record, "prompt_tokens"),
        "completion_tokens": _tokens(record, "completion_tokens"),
        "status": status,
    }
