"""SGLang prefill-decode disaggregation: two root spans, one request id -> one request-log record.

A disaggregated SGLang deployment (``--disaggregation-mode prefill`` / ``decode`` behind
``sglang_router --pd-disaggregation``) sends every request to a prefill server and a decode
server; each one's tokenizer manager traces it (``sglang/srt/observability/trace.py``,
``TraceReqContext.trace_req_start``) with a root span named ``"{role} Req {rid[:8]}"``, role being
the server's ``disaggregation_mode`` (``prefill`` or ``decode``; a unified server's name is
``Req ...``), the attributes ``rid`` and ``bootstrap_room`` (the KV-transfer room both servers
share, hex text) and, at the finish, the same request attributes as a unified server.

The two spans become one record (:func:`merge`):

* arrival, scheduled and first-token times and the prompt tokens from the **prefill** span;
* finish time, completion (output) tokens and the finish status from the **decode** span (an
  ERROR on either span makes the request ``error``);
* node and replica: the REQUESTS schema holds one replica per request, so the row names the
  **decode** server's node and replica (where the output tokens and most of the time are spent).
  The prefill server's node and replica are kept in the record as ``prefill_node`` /
  ``prefill_replica_id`` (in the receiver's journal and the converted record, not in the spool):
  the prefill replica's devices show in the data-quality page as devices without requests.

The halves are paired by request id and phase. The receiver journals each half as it comes and
pairs them when it rolls its journal into the spool; a half whose other half has not come after
``PAIR_WAIT_S`` is spooled alone (a prefill half alone has the prefill server's output count, a
decode half alone its own times), and a half arriving after that is a duplicate. The offline
conversion pairs a whole file at once.
"""
from __future__ import annotations

import time
from typing import Any, Iterable

PHASES = ("prefill", "decode")
#: seconds the receiver waits for a request's other half before spooling the one it has
PAIR_WAIT_S = 600.0
#: private record keys: the span's phase and when the receiver got it
PHASE_KEY, RECEIVED_KEY = "_phase", "_received_s"


def span_phase(span_name: str) -> str | None:
    """``prefill`` / ``decode`` for a disaggregated SGLang root span (``"prefill Req 0a1b2c3d"``), else None."""
    words = span_name.split(" ")
    if len(words) >= 2 and words[0] in PHASES and words[1] == "Req":
        return words[0]
    return None


def half_key(record: dict[str, Any]) -> str:
    """The dedupe key of a record: its request id, with the phase for a half."""
    phase = record.get(PHASE_KEY)
    return record["request_id"] if phase is None else f"{record['request_id']}\x00{phase}"


def stamp(record: dict[str, Any], now_s: float | None = None) -> dict[str, Any]:
    """A half with the time it was received (the wait for its other half starts there)."""
    if record.get(PHASE_KEY) is None:
        return record
    return {**record, RECEIVED_KEY: time.time() if now_s is None else now_s}


def _plain(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in (PHASE_KEY, RECEIVED_KEY)}


def merge(prefill: dict[str, Any], decode: dict[str, Any]) -> dict[str, Any]:
    """One record from the prefill and the decode half of a request (see the module docstring)."""
    out = _plain(decode)
    for key in ("arrival_time", "scheduled_time", "first_token_time", "prompt_tokens"):
        out[key] = prefill.get(key)
    if prefill.get("status") == "error":
        out["status"] = "error"
    out["prefill_node"], out["prefill_replica_id"] = prefill.get("node"), prefill.get("replica_id")
    return out


def pair(records: Iterable[dict[str, Any]], now_s: float | None = None,
         wait_s: float = PAIR_WAIT_S) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(records to spool, halves still waiting). Whole records pass; a request's two halves are merged;
    a lone half waits while younger than ``wait_s`` at ``now_s`` (None: nothing waits). A half seen
    twice (a retried export) counts once."""
    out: list[dict[str, Any]] = []
    halves: dict[str, dict[str, dict[str, Any]]] = {}
    for r in records:
        phase = r.get(PHASE_KEY)
        if phase is None:
            out.append(r)
        else:
            halves.setdefault(r["request_id"], {}).setdefault(phase, r)
    waiting: list[dict[str, Any]] = []
    for slot in halves.values():
        if len(slot) == 2:
            out.append(merge(slot["prefill"], slot["decode"]))
            continue
        (half,) = slot.values()
        if now_s is not None and now_s - float(half.get(RECEIVED_KEY, now_s)) < wait_s:
            waiting.append(half)
        else:
            out.append(_plain(half))
    return out, waiting
