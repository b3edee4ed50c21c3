"""`tokenwatt import prometheus`: exporter and inference-server history from a Prometheus HTTP API.

A team that already keeps dcgm-exporter and AMD device-metrics-exporter series in Prometheus
(or Thanos, Mimir, VictoriaMetrics: the same ``/api/v1/query_range``) imports them instead of
starting from today. Each metric the live scraper reads is queried per time chunk; the values of
one instant are put back together as the samples of one scrape and mapped by
:func:`collectors.exposition.parse_samples`, the live scraper's own mapping, so the rows in
``device_samples`` are the ones the scraper would have written (MIG instances split the same way);
``vllm:*`` / ``sglang:*`` token and request counters go to ``server_counters`` the same way.

A series without a ``hostname``/``Hostname`` label takes its node from the ``instance`` label's
host (as the scraper takes it from the URL), or ``node`` for a loopback target.

**Resumable.** Chunks are written one by one, each as files named after the URL and the chunk's
start (a rerun rewrites them, never duplicates); a JSON state file records the chunks done and the
MIG split's counters, so an interrupted import continues where it stopped.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import urllib.parse
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

from collectors.base import rows_to_table
from collectors.exposition import _AMD, _DCGM, _GR_ACTIVE, _SERVER_PREFIXES, MigSplitter, ServerCounters, parse_samples
from collectors.http_fetch import fetch_text
from collectors.names import host_name
from collectors.prometheus import write_server_counters
from collectors.spool import write_partition

#: every metric the live scraper maps to a device column
METRICS = (*_DCGM, _GR_ACTIVE, *_AMD, *(f"amd_{m}" for m in _AMD))
#: inference-server counters, written to the ``server_counters`` kind like the scraper's
SERVER_METRICS = tuple(f"{prefix}{name}" for prefix in _SERVER_PREFIXES for name in (
    "prompt_tokens_total", "generation_tokens_total", "request_success_total", "num_requests_running",
    "num_requests_waiting"))
#: Prometheus refuses a query_range of more than 11,000 points per series
MAX_POINTS = 11_000
_LOOPBACK = {"localhost", "127.0.0.1", "::1", ""}


class HistoryImportError(RuntimeError):
    """The API refused a query, or the state file belongs to another import."""


def query_range(base_url: str, query: str, start: float, end: float, step: float,
                timeout_s: float = 60.0) -> list[dict[str, Any]]:
    """The ``result`` of one ``/api/v1/query_range`` (matrix) call."""
    url = base_url.rstrip("/") + "/api/v1/query_range?" + urllib.parse.urlencode(
        {"query": query, "start": repr(start), "end": repr(end), "step": repr(step)})
    try:
        data = json.loads(fetch_text(url, timeout_s, 512 * 1024 * 1024, accept="application/json"))
    except (OSError, ValueError) as exc:
        raise HistoryImportError(f"query_range {query!r} [{start:g}, {end:g}]: {exc}") from None
    if data.get("status") != "success" or data.get("data", {}).get("resultType") != "matrix":
        raise HistoryImportError(f"query_range {query!r}: {data.get('errorType')}: {data.get('error')}")
    return data["data"]["result"]


def _instance_host(labels: Mapping[str, str]) -> str | None:
    instance = labels.get("instance")
    if not instance:
        return None
    host = urllib.parse.urlsplit("//" + instance).hostname or ""
    return None if host in _LOOPBACK else host


def chunk_rows(base_url: str, start: float, end: float, step: float, node: str,
               aliases: Mapping[str, str] | None, mig: MigSplitter, timeout_s: float = 60.0,
               skipped: list[str] | None = None) -> list[dict[str, Any]]:
    """DEVICE_SAMPLES rows for the step instants in [start, end] (inclusive); series samples that
    cannot be kept are appended to ``skipped`` with their reason."""
    skipped = [] if skipped is None else skipped
    instants: dict[float, list[tuple[str, dict[str, str], float]]] = defaultdict(list)
    for metric in METRICS:
        for series in query_range(base_url, metric, start, end, step, timeout_s):
            labels = dict(series["metric"])
            name = labels.pop("__name__", metric)
            if not (labels.get("hostname") or labels.get("Hostname")) and _instance_host(labels):
                labels["hostname"] = _instance_host(labels)
            for t, value in series["values"]:
                v = float(value)
                if math.isfinite(v):
                    instants[float(t)].append((name, labels, v))
    rows: list[dict[str, Any]] = []
    for t in sorted(instants):
        ts = datetime.fromtimestamp(t, tz=timezone.utc)
        result = parse_samples(instants[t], ts, node, base_url, aliases, mig)
        rows += result.device_rows
        skipped.extend(result.skipped)
    return rows


def chunk_counters(base_url: str, start: float, end: float, step: float, node: str,
                   aliases: Mapping[str, str] | None, timeout_s: float = 60.0) -> list[ServerCounters]:
    """vLLM / SGLang server counters for the step instants in [start, end], one per server and model
    per instant and scrape target (``instance``), as the live scraper writes them."""
    instants: dict[tuple[float, str], list[tuple[str, dict[str, str], float]]] = defaultdict(list)
    for metric in SERVER_METRICS:
        for series in query_range(base_url, metric, start, end, step, timeout_s):
            labels = dict(series["metric"])
            name = labels.pop("__name__", metric)
            for t, value in series["values"]:
                v = float(value)
                if math.isfinite(v):
                    instants[(float(t), labels.get("instance", ""))].append((name, labels, v))
    out: list[ServerCounters] = []
    for t, instance in sorted(instants):
        host = _instance_host({"instance": instance})
        ts = datetime.fromtimestamp(t, tz=timezone.utc)
        out += parse_samples(instants[(t, instance)], ts, host_name(host, aliases) if host else node,
                             instance).server_counters
    return out


def _save_state(path: Path, state: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w") as fh:
        json.dump(state, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def import_history(base_url: str, spool: Path | str, start: float, end: float, step: float, node: str,
                   state_file: Path | str | None = None, chunk_s: float | None = None,
                   aliases: Mapping[str, str] | None = None, max_chunks: int | None = None,
                   timeout_s: float = 60.0) -> dict[str, Any]:
    """Import [start, end] (epoch seconds) at ``step`` into ``spool``; a summary of what was done."""
    if not (step > 0 and end > start):
        raise HistoryImportError("need step > 0 and end after start")
    chunk_s = chunk_s or min(6 * 3600.0, step * (MAX_POINTS - 1))
    chunk_s = max(step, math.floor(chunk_s / step) * step)
    key = hashlib.sha256(f"{base_url}|{start!r}|{end!r}|{step!r}".encode()).hexdigest()[:12]
    state_path = Path(state_file) if state_file else Path(spool) / f".import-prometheus-{key}.json"
    state = {"url": base_url, "start": start, "end": end, "step": step, "done": [], "mig": {}, "rows": 0}
    if state_path.exists():
        saved = json.loads(state_path.read_text())
        if [saved.get(k) for k in ("url", "start", "end", "step")] != [base_url, start, end, step]:
            raise HistoryImportError(f"{state_path} is the state of another import ({saved.get('url')}, "
                                     f"{saved.get('start')}..{saved.get('end')} step {saved.get('step')})")
        state = saved
    mig = MigSplitter(state["mig"])
    done, ran, files, skipped = set(state["done"]), 0, 0, []
    n_chunks = math.ceil((end - start) / chunk_s)
    for i in range(n_chunks):
        a = start + i * chunk_s
        if a in done:
            continue
        if max_chunks is not None and ran >= max_chunks:
            break
        b = end if i == n_chunks - 1 else a + chunk_s - step
        rows = chunk_rows(base_url, a, b, step, node, aliases, mig, timeout_s, skipped)
        groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        for r in rows:
            groups[(r["ts"].strftime("%Y-%m-%d"), r["node"])].append(r)
        for (date, host), group in sorted(groups.items()):
            write_partition(spool, "device_samples", date, host, rows_to_table(group), name=f"prom-{key}-{int(a)}")
            files += 1
        counters = chunk_counters(base_url, a, b, step, node, aliases, timeout_s)
        if counters:
            files += len(write_server_counters(spool, counters, f"prom-{key}-{int(a)}"))
        state["done"].append(a)
        state["mig"], state["rows"] = mig.state(), state["rows"] + len(rows)
        _save_state(state_path, state)
        ran += 1
    return {"chunks": n_chunks, "chunks_done": len(state["done"]), "chunks_this_run": ran, "files": files,
            "rows_total": state["rows"], "samples_skipped": len(skipped), "skipped_examples": skipped[:5],
            "state": str(state_path), "complete": len(state["done"]) == n_chunks}


def _epoch(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        ts = datetime.fromisoformat(text.replace("Z", "+00:00"))
        return (ts if ts.tzinfo else ts.replace(tzinfo=timezone.utc)).timestamp()


def add_import_arguments(sub) -> None:
    """``tokenwatt import prometheus`` on the CLI's subparsers."""
    imp = sub.add_parser("import", help="import telemetry history").add_subparsers(dest="what", required=True)
    p = imp.add_parser("prometheus", help="dcgm-exporter / AMD exporter history via the Prometheus HTTP API")
    p.add_argument("--url", required=True, help="Prometheus (or Thanos, Mimir, VictoriaMetrics) base URL")
    p.add_argument("--start", required=True, help="ISO-8601 time (UTC if naive) or epoch seconds")
    p.add_argument("--end", required=True, help="ISO-8601 time (UTC if naive) or epoch seconds")
    p.add_argument("--step", type=float, default=15.0, help="seconds between samples (the scrape interval)")
    p.add_argument("--spool", type=Path, required=True, help="spool directory")
    p.add_argument("--node", default="localhost", help="node for series with no host label and a loopback instance")
    p.add_argument("--aliases", type=Path, default=None, help="host alias YAML (aliases: {fqdn-or-name: node})")
    p.add_argument("--state", type=Path, default=None, help="state file (default SPOOL/.import-prometheus-<key>.json)")
    p.add_argument("--chunk-s", type=float, default=None, help="seconds per query (default 6 h, within 11,000 points)")
    p.add_argument("--max-chunks", type=int, default=None, help="stop after this many chunks (rerun to continue)")
    p.set_defaults(func=run_import)


def run_import(args) -> int:
    import sys

    from collectors.names import HostAliasError, load_host_aliases

    try:
        aliases = load_host_aliases(args.aliases) if args.aliases else {}
        result = import_history(args.url, args.spool, _epoch(args.start), _epoch(args.end), args.step, args.node,
                                args.state, args.chunk_s, aliases, args.max_chunks)
    except (HistoryImportError, HostAliasError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2))
    return 0 if result["complete"] or args.max_chunks else 1
