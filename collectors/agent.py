"""``tokenwatt collect`` (and ``python -m collectors.agent``): the command line of the sampling agent.

The agent itself (schedule, bounded buffer, atomic flushes, rejects, clean stop) is
:class:`collectors.sampler.Agent`; its own metrics are in collectors/agent_metrics.py. The exit
status is 0 after a clean stop, 1 when rows were lost (rejected, dropped or never written), 2 for
a usage error.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from dataclasses import asdict
from pathlib import Path

from collectors.agent_metrics import AgentMetricsCollector, serve_metrics  # noqa: F401 (re-exported)
from collectors.base import BackendUnavailable
from collectors.factory import BACKEND_NAMES, get_backend
from collectors.sampler import Agent, AgentStats  # noqa: F401 (re-exported)

log = logging.getLogger("tokenwatt.collect")


# -- command line -------------------------------------------------------------


def add_collect_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``tokenwatt collect`` options."""
    parser.add_argument("--backend", choices=BACKEND_NAMES, default="auto",
                        help="telemetry source; auto tries nvidia, then amd, then falls back to sim")
    parser.add_argument("--interval-s", type=float, default=1.0, help="sampling period in seconds")
    parser.add_argument("--spool", type=Path, default=os.environ.get("TOKENWATT_SPOOL"),
                        help="spool directory (default: $TOKENWATT_SPOOL)")
    parser.add_argument("--duration-s", type=float, default=None, help="stop after this many seconds")
    parser.add_argument("--url", action="append", default=[], dest="urls", metavar="URL",
                        help="/metrics URL to scrape (prometheus backend; repeatable)")
    parser.add_argument("--flush-interval-s", type=float, default=10.0, help="seconds between spool flushes")
    parser.add_argument("--metrics-port", type=int, default=None,
                        help="serve the agent's own Prometheus metrics on this port (0: any free port)")
    parser.add_argument("--metrics-addr", default="127.0.0.1",
                        help="address for --metrics-port (0.0.0.0 to let a remote Prometheus scrape)")
    parser.add_argument("--node", default=None, help="node name (default: this host's short name)")
    parser.add_argument("--max-buffer-rows", type=int, default=500_000,
                        help="rows kept in memory before the oldest are dropped")
    parser.add_argument("--scrape-timeout-s", type=float, default=2.0, help="HTTP timeout per scrape")
    parser.add_argument("--sim-devices", type=int, default=8, help="sim backend: number of devices")
    parser.add_argument("--sim-chip", default="nvidia-h100-sxm", help="sim backend: catalog chip id")
    parser.add_argument("--sim-seed", type=int, default=0, help="sim backend: seed")


def run_collect(args: argparse.Namespace) -> int:
    """Run the agent from parsed arguments; the process exit status."""
    err = sys.stderr
    if args.spool is None:
        print("tokenwatt collect: --spool is required (or set TOKENWATT_SPOOL)", file=err)
        return 2
    if args.interval_s <= 0 or args.flush_interval_s <= 0:
        print("tokenwatt collect: --interval-s and --flush-interval-s must be > 0", file=err)
        return 2
    try:
        backend = get_backend(
            args.backend,
            node=args.node,
            urls=args.urls,
            timeout_s=args.scrape_timeout_s,
            devices=args.sim_devices,
            chip=args.sim_chip,
            seed=args.sim_seed,
        )
    except BackendUnavailable as exc:
        print(f"tokenwatt collect: {exc}", file=err)
        return 2
    agent = Agent(
        backend,
        args.spool,
        node=args.node,
        interval_s=args.interval_s,
        flush_interval_s=args.flush_interval_s,
        max_buffer_rows=args.max_buffer_rows,
    )
    server = None
    try:
        if args.metrics_port is not None:
            server = serve_metrics(agent, args.metrics_port, args.metrics_addr)
            host, port = server.server_address[:2]
            print(f"tokenwatt collect: metrics on http://{host}:{port}/metrics", file=err, flush=True)
        stats = agent.run(duration_s=args.duration_s)
    finally:
        if server is not None:
            server.shutdown()
        backend.close()
        agent.close()
    print("tokenwatt collect: done " + json.dumps(asdict(stats), sort_keys=True), file=err, flush=True)
    lost = agent.rows_lost()
    if lost:
        print(f"tokenwatt collect: {lost} rows lost ({stats.rows_rejected} rejected, see "
              f"{Path(args.spool) / 'rejects'}; {stats.dropped_rows} dropped from the full buffer; "
              f"{agent.buffered_rows()} not written)", file=err, flush=True)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m collectors.agent``: the same as ``tokenwatt collect``."""
    parser = argparse.ArgumentParser(prog="python -m collectors.agent", description="Sample devices into a Parquet spool.")
    add_collect_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return run_collect(args)


if __name__ == "__main__":
    sys.exit(main())
