"""Simulated host power: the CPU package and DRAM energy a RAPL collector would report per node.

No measurement backs it: the ratio of host to accelerator power is an assumption taken from
Google's published fleet split (``host_power.yaml`` beside this module, with its source). Each
node gets two domains, ``package-0`` and ``dram-0``, sampled every ``sample_interval_s`` seconds
(at least the simulator's own interval), with a cumulative counter in joules (RAPL's 2^32 uJ
range, so it wraps as real ones do), the energy since the previous reading and the mean power over
it. The energy of a reading is the integral of the per-tick host power, so the day's host joules
are exact whatever the interval.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from collectors.config import fields, load_yaml_mapping, number, string
from collectors.schema import HOST_SAMPLES
from collectors.sim.sensors import TICK_S, ts_array

HOST_POWER_FILE = Path(__file__).parent / "host_power.yaml"
#: RAPL's energy_uj range on most Intel parts: 2^32 uJ
WRAP_J = 2 ** 32 / 1e6


@dataclass(frozen=True)
class HostPower:
    host_to_accelerator_ratio: float
    package_share: float
    sample_interval_s: float
    source: str


def load_host_power(path: str | Path | None = None) -> HostPower:
    path = Path(path or HOST_POWER_FILE)
    raw = fields(path, "", load_yaml_mapping(path), {"host_to_accelerator_ratio", "package_share",
                                                      "sample_interval_s", "source"},
                 required=("host_to_accelerator_ratio", "package_share", "sample_interval_s", "source"))
    return HostPower(
        host_to_accelerator_ratio=number(path, "host_to_accelerator_ratio", raw["host_to_accelerator_ratio"],
                                         lo=0, hi=10),
        package_share=number(path, "package_share", raw["package_share"], lo=0, hi=1),
        sample_interval_s=number(path, "sample_interval_s", raw["sample_interval_s"], lo=TICK_S, hi=3600),
        source=string(path, "source", raw["source"]),
    )


def host_table(node: str, day_start: float, accel_power_w: np.ndarray, counters_j: dict, interval_s: float,
               hp: HostPower) -> pa.Table:
    """One day of host samples for ``node`` from its accelerators' per-tick power (W, TICK_S apart).

    ``counters_j`` carries each domain's unwrapped counter from day to day (updated in place)."""
    per = max(1, int(round(max(hp.sample_interval_s, interval_s) / TICK_S)))
    n = accel_power_w.shape[0] // per
    host_w = accel_power_w[: n * per] * hp.host_to_accelerator_ratio
    energy_j = (host_w * TICK_S).reshape(n, per).sum(axis=1)
    ts = day_start + TICK_S * per * np.arange(1, n + 1)
    parts = []
    for domain, share in (("package-0", hp.package_share), ("dram-0", 1.0 - hp.package_share)):
        delta = energy_j * share
        total = counters_j.get(domain, 0.0) + np.cumsum(delta)
        counters_j[domain] = float(total[-1]) if n else counters_j.get(domain, 0.0)
        parts.append(pa.table({
            "ts": ts_array(ts), "node": pa.array([node] * n, pa.string()),
            "domain": pa.array([domain] * n, pa.string()),
            "energy_counter_j": pa.array(np.mod(total, WRAP_J)),
            "counter_wrap_j": pa.array(np.full(n, WRAP_J)),
            "energy_delta_j": pa.array(delta),
            "power_w": pa.array(delta / (TICK_S * per)),
            "source": pa.array(["sim"] * n, pa.string()),
        }, schema=HOST_SAMPLES))
    return pa.concat_tables(parts)


def write_host_day(sim, date: str, day_start: float, node_power_w: dict[str, np.ndarray]) -> None:
    """Write the day's host samples of every node (spool/host_samples/date=/node=/)."""
    from collectors import spool as spoolmod

    for node, power in node_power_w.items():
        counters = sim.host_counters.setdefault(node, {})
        tbl = host_table(node, day_start, power, counters, sim.interval_s, sim.host_power)
        sim.written.append(spoolmod.write_partition(sim.spool, "host_samples", date, node, tbl,
                                                    name=f"{node}-host-{date}"))
