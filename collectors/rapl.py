"""Host energy from Linux powercap / RAPL: CPU package and DRAM counters of this machine.

Reads ``/sys/class/powercap/<zone>/`` (the root is injected, so tests use a fixture tree):

    intel-rapl:0/name                   "package-0"
    intel-rapl:0/energy_uj              cumulative microjoules, wraps at max_energy_range_uj
    intel-rapl:0/max_energy_range_uj    the counter's range
    intel-rapl:0/intel-rapl:0:2/name    "dram" (a subzone of package 0; absent on many machines)

AMD EPYC exposes the same tree (package zones only, no DRAM). Each sample is one row per domain
(``package-0``, ``dram-0``, ``psys``) in the ``host_samples`` spool schema: the raw counter in
joules, its wrap range, and ``energy_delta_j``: joules since this backend's previous reading of
the domain, with a wrap (the counter going backwards within its range) added back. A domain
whose files cannot be read is counted in ``errors_by_domain`` and skipped; the others go on.
Reading ``energy_uj`` needs root on kernels since 5.10 (CVE-2020-8694).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import pyarrow as pa

from collectors.schema import HOST_SAMPLES
from collectors.spool import write_partition

POWERCAP = Path("/sys/class/powercap")
_KEEP = ("package", "dram", "psys")


@dataclass
class _Domain:
    name: str          # package-0, dram-0, psys
    path: Path
    wrap_j: float | None
    last_j: float | None = None


def _read_uj(path: Path) -> float:
    return float(int(path.read_text().strip())) * 1e-6


def discover(root: Path | str = POWERCAP) -> list[_Domain]:
    """The package, DRAM and psys zones under ``root`` (top-level and one level of subzones)."""
    root = Path(root)
    found: list[_Domain] = []
    if not root.is_dir():
        return found
    for zone in sorted(root.glob("intel-rapl:*")):
        if not (zone / "energy_uj").exists() or zone.name.count(":") != 1:
            continue
        name = (zone / "name").read_text().strip() if (zone / "name").exists() else zone.name
        pkg = name.split("-")[-1] if name.startswith("package-") else zone.name.split(":")[1]
        candidates = [(name, zone)] + [((sub / "name").read_text().strip() if (sub / "name").exists() else sub.name, sub)
                                       for sub in sorted(zone.glob(f"{zone.name}:*"))]
        for zname, zpath in candidates:
            if not zname.startswith(_KEEP) or not (zpath / "energy_uj").exists():
                continue
            label = f"dram-{pkg}" if zname == "dram" else zname
            wrap = zpath / "max_energy_range_uj"
            found.append(_Domain(label, zpath, _read_uj(wrap) if wrap.exists() else None))
    return found


class RaplBackend:
    """Samples this host's RAPL domains; rows in the ``host_samples`` layout."""

    source = "rapl"

    def __init__(self, node: str | None = None, root: Path | str = POWERCAP,
                 clock: Callable[[], float] = time.time) -> None:
        from collectors.base import BackendUnavailable, default_node

        self.node = node or default_node()
        self.root = Path(root)
        self._clock = clock
        self.domains = discover(self.root)
        self.errors_by_domain: dict[str, int] = {}
        if not self.domains:
            raise BackendUnavailable(f"RAPL not available: no package zone under {self.root} "
                                     "(powercap driver not loaded, or not Linux)")

    def _delta(self, dom: _Domain, now_j: float) -> float | None:
        if dom.last_j is None:
            return None
        d = now_j - dom.last_j
        if d < 0:  # wrapped: the counter restarted from 0 after max_energy_range_uj
            d = d + dom.wrap_j if dom.wrap_j else None
        return d

    def sample(self) -> list[dict[str, Any]]:
        ts = datetime.fromtimestamp(self._clock(), tz=timezone.utc)
        rows = []
        for dom in self.domains:
            try:
                now_j = _read_uj(dom.path / "energy_uj")
            except (OSError, ValueError):
                self.errors_by_domain[dom.name] = self.errors_by_domain.get(dom.name, 0) + 1
                continue
            rows.append({"ts": ts, "node": self.node, "domain": dom.name, "energy_counter_j": now_j,
                         "counter_wrap_j": dom.wrap_j, "energy_delta_j": self._delta(dom, now_j),
                         "power_w": None, "source": self.source})
            dom.last_j = now_j
        return rows

    def close(self) -> None:
        """Nothing to release."""


def write_host_samples(spool: Path | str, rows: list[dict[str, Any]], name: str | None = None) -> list[Path]:
    """Write host sample rows into the spool, one file per (UTC date, node)."""
    by_part: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        by_part.setdefault((r["ts"].strftime("%Y-%m-%d"), r["node"]), []).append(r)
    return [write_partition(spool, "host_samples", date, node, pa.Table.from_pylist(part, schema=HOST_SAMPLES),
                            name=name and f"{name}-{date}")
            for (date, node), part in sorted(by_part.items())]
