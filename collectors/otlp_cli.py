"""Command lines for OpenTelemetry traces: ``tokenwatt receive otlp`` and ``tokenwatt convert otlp``.

``convert otlp`` reads an OpenTelemetry Collector ``file`` exporter's output (JSON lines, one
OTLP/JSON export a line) offline; spool file names come from the file's content, so converting
the same file twice rewrites the same files, and a request id seen twice in it is kept once
(a disaggregated SGLang request's prefill and decode halves are merged: collectors.otlp_disagg).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import signal
import sys
import threading
from pathlib import Path

from typing import TYPE_CHECKING

from collectors.names import HostAliasError, load_host_aliases
from collectors.schema import TASKS, TIERS
from collectors.spool import safe_name

if TYPE_CHECKING:  # the OpenTelemetry messages are imported by the subcommands that use them
    from collectors.otlp import Defaults


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--spool", type=Path, required=True, help="spool directory the requests are written to")
    p.add_argument("--node", default=None, help="node for spans whose resource has no host.name")
    p.add_argument("--replica", default=None, help="replica for spans without tokenwatt.replica_id / service.instance.id")
    p.add_argument("--task", default="chat", choices=TASKS, help="task for spans without tokenwatt.task")
    p.add_argument("--language", default="en", help="language for spans without tokenwatt.language")
    p.add_argument("--tier", default="api", choices=TIERS, help="tier for spans without tokenwatt.tier")
    p.add_argument("--aliases", type=Path, default=None, help="host alias YAML (aliases: {fqdn-or-name: node})")


def _defaults(args: argparse.Namespace) -> "Defaults":
    from collectors.otlp import Defaults

    aliases = load_host_aliases(args.aliases) if args.aliases else {}
    return Defaults(node=args.node, replica_id=args.replica, task=args.task, language=args.language,
                    tier=args.tier, aliases=aliases)


def add_otlp_arguments(sub) -> None:
    """``receive otlp`` and ``convert otlp`` subcommands on the CLI's subparsers."""
    receive = sub.add_parser("receive", help="receive telemetry from servers").add_subparsers(dest="what", required=True)
    p = receive.add_parser("otlp", help="OTLP/HTTP trace receiver: request spans -> requests spool rows")
    _common(p)
    p.add_argument("--addr", default="127.0.0.1", help="listen address (default loopback; 0.0.0.0 for remote servers)")
    p.add_argument("--port", type=int, default=4318, help="listen port (OTLP/HTTP default 4318; 0: any free port)")
    p.add_argument("--state", type=Path, default=None, help="journal directory (default SPOOL/.otlp-receiver)")
    p.add_argument("--roll-interval-s", type=float, default=30.0, help="seconds between journal -> spool rolls")
    p.add_argument("--pair-wait-s", type=float, default=600.0,
                   help="seconds a disaggregated request's prefill or decode span waits for the other one")
    p.set_defaults(func=run_receive)
    conv = sub.add_parser("convert", help="convert saved telemetry into the spool").add_subparsers(dest="what", required=True)
    p = conv.add_parser("otlp", help="an OpenTelemetry Collector file exporter's JSON lines -> requests spool rows")
    _common(p)
    p.add_argument("--file", type=Path, required=True, help="the file exporter's output")
    p.set_defaults(func=run_convert)


def run_receive(args: argparse.Namespace) -> int:
    from collectors.otlp_receiver import serve, stats_json

    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        defaults = _defaults(args)
    except HostAliasError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())

    def ready(address) -> None:
        print(f"tokenwatt receive otlp: listening on http://{address[0]}:{address[1]}/v1/traces",
              file=sys.stderr, flush=True)

    stats = serve(args.spool, defaults, args.addr, args.port, args.state, args.roll_interval_s, stop, ready,
                  pair_wait_s=args.pair_wait_s)
    print("tokenwatt receive otlp: done " + stats_json(stats), file=sys.stderr, flush=True)
    return 0


def convert_file(path: Path | str, spool: Path | str, defaults: "Defaults") -> dict:
    """Convert a Collector file-exporter output; counts of what was written, skipped and rejected."""
    from collectors.otlp import convert, iter_file_export
    from collectors.otlp_disagg import half_key, pair
    from collectors.requestlog import record_to_row, write_requests

    path = Path(path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    records, seen = [], set()
    out = {"requests": 0, "duplicates": 0, "unknown_spans": 0, "rejected": [], "bad_lines": []}
    for line_no, message, error in iter_file_export(path):
        if message is None:
            out["bad_lines"].append(f"{path}:{line_no}: {error}")
            continue
        conv = convert(message, defaults)
        out["unknown_spans"] += conv.unknown
        out["rejected"] += [f"{path}:{line_no}: {reason}" for _, reason in conv.rejected]
        for record in conv.records:
            if record["request_id"] in seen or half_key(record) in seen:
                out["duplicates"] += 1
                continue
            seen.add(half_key(record))
            records.append(record)
    rows = []
    for record in pair(records)[0]:
        try:
            rows.append(record_to_row(record))
        except ValueError as exc:  # a merged request whose halves disagree (times out of order)
            out["rejected"].append(f"{path}: request {record['request_id']!r}: {exc}")
    result = write_requests(spool, rows, f"otlp-file-{safe_name(path.stem)}-{digest}") if rows else None
    files = result.files if result else []
    if result is not None:
        out["rejected"] += [f"{path}: field {r.field!r}: {r.reason}" for r in result.rejects]
        if result.error is not None or result.unwritten:
            raise OSError(f"{path}: {len(result.unwritten)} rows not written: {result.error}")
    out["requests"], out["files"] = len(rows) - (len(result.rejects) if result else 0), [str(f) for f in files]
    return out


def run_convert(args: argparse.Namespace) -> int:
    try:
        result = convert_file(args.file, args.spool, _defaults(args))
    except (HostAliasError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for line in result["bad_lines"] + result["rejected"]:
        print(f"rejected: {line}", file=sys.stderr)
    print(json.dumps({k: v for k, v in result.items() if k not in ("bad_lines", "rejected")}
                     | {"bad_lines": len(result["bad_lines"]), "rejected": len(result["rejected"])}, indent=2))
    return 0
