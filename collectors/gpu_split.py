"""One physical GPU seen as several devices (NVIDIA MIG instances, AMD compute partitions): each
slice a device of its own, the physical GPU's power and energy shared among its slices, energy
conserved per physical GPU.

* **MIG** (dcgm-exporter labels ``GPU_I_ID`` / ``GPU_I_PROFILE``): dcgm-exporter repeats the whole
  GPU's power and energy counter on every instance's series. Each instance becomes device
  ``<node>/<gpu>/<id>`` (``device_uuid`` ``<GPU UUID>/<id>``); the share of each instance is its
  ``DCGM_FI_PROF_GR_ENGINE_ACTIVE`` at that sample.
* **AMD partitions** (device-metrics-exporter labels ``gpu_partition_id``,
  ``gpu_compute_partition_type`` SPX/DPX/QPX/CPX; every partition carries its parent GPU's
  ``serial_number``): each partition is already a GPU of its own (``gpu_id``, device
  ``<node>/<gpu_id>``), but in DPX/QPX/CPX modes only partition 0 reports power and energy (the
  others report nothing or 0). The physical GPU (node, serial number) takes partition 0's power and
  energy and shares them by the partitions' ``gpu_gfx_activity``.

Evenly when a slice lacks its activity or all are idle. The slices' counters are kept cumulative
from sample to sample, so their increments add up to the GPU's. The state (last GPU counter, slice
counters) lives in the splitter; :meth:`GpuSplitter.state` / ``GpuSplitter(state)`` carry it
across an interrupted import.

Rows come in with private keys (removed here): ``_instance`` and ``_gr_active`` (MIG),
``_partition``, ``_parent`` (AMD).
"""
from __future__ import annotations

import threading
from typing import Any, Mapping

#: a member of one physical GPU: (slice id, activity, row, whether the slice id extends the device id)
Member = tuple[str, Any, dict[str, Any], bool]


class GpuSplitter:
    """MIG instances and AMD partitions as devices of their own, the physical GPU's energy shared."""

    def __init__(self, state: Mapping[str, Any] | None = None) -> None:
        self._last: dict[str, tuple[float, dict[str, float]]] = {
            k: (v[0], dict(v[1])) for k, v in (state or {}).items()}
        self._lock = threading.Lock()

    def state(self) -> dict[str, Any]:
        with self._lock:
            return {k: [v[0], dict(v[1])] for k, v in self._last.items()}

    def split(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """``rows`` with MIG instance and AMD partition rows rewritten (private keys removed)."""
        out: list[dict[str, Any]] = []
        groups: dict[str, list[Member]] = {}
        parents: dict[str, dict[str, str]] = {}  # AMD: key -> partition -> the parent's serial number
        for r in rows:
            instance, active = r.pop("_instance", None), r.pop("_gr_active", None)
            partition, parent = r.pop("_partition", None), r.pop("_parent", None)
            if instance is not None:
                key = f"{r['source']}|{r['node']}|{r['device_index']}"
                groups.setdefault(key, []).append((instance, active, r, True))
            elif partition is not None and parent:
                key = f"{r['source']}|{r['node']}|serial={parent}"
                groups.setdefault(key, []).append((partition, r["utilization_pct"], r, False))
                parents.setdefault(key, {})[partition] = parent
            else:
                out.append(r)
        with self._lock:
            for key, members in groups.items():
                if len(members) == 1 and not members[0][3] and members[0][0] == "0":
                    out.append(members[0][2])  # an unpartitioned (SPX) AMD GPU: nothing to share
                else:
                    out.extend(self._split_gpu(key, members, parents.get(key)))
        return out

    def _split_gpu(self, key: str, members: list[Member],
                   parents: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
        parents = parents or {}
        members.sort(key=lambda m: (len(m[0]), m[0]))
        shares = _shares([m[1] for m in members])
        if members[0][3]:  # MIG: every instance repeats the GPU's readings
            energy = next((m[2]["energy_counter_j"] for m in members if m[2]["energy_counter_j"] is not None), None)
            power = next((m[2]["power_w"] for m in members if m[2]["power_w"] is not None), None)
        else:  # AMD: partition 0 alone reports them
            first = members[0][2] if members[0][0] == "0" else {}
            energy, power = first.get("energy_counter_j"), first.get("power_w")
        last = self._last.get(key)
        names = [m[0] for m in members]
        restart = last is None or energy is None or energy < last[0] or sorted(last[1]) != sorted(names)
        counters: dict[str, float] = {}
        rows = []
        for (slice_id, _, r, rename), share in zip(members, shares):
            if energy is not None:
                counters[slice_id] = energy * share if restart else last[1][slice_id] + share * (energy - last[0])
            new = {**r, "power_w": power * share if power is not None else None,
                   "energy_counter_j": counters.get(slice_id)}
            if rename:
                new["device_id"] = f"{r['device_id']}/{slice_id}"
                new["device_uuid"] = f"{r['device_uuid']}/{slice_id}" if r["device_uuid"] else None
            elif r["device_uuid"] and r["device_uuid"] == parents.get(slice_id):
                new["device_uuid"] = f"{r['device_uuid']}/{slice_id}"  # the parent's serial: one per partition
            rows.append(new)
        if energy is not None:
            self._last[key] = (energy, counters)
        return rows


def _shares(actives: list[Any]) -> list[float]:
    """Each slice's share: its activity over the sum, or evenly when one lacks it or all are idle."""
    total = sum(a for a in actives if a is not None)
    if all(a is not None and a >= 0 for a in actives) and total > 0:
        return [a / total for a in actives]
    return [1.0 / len(actives)] * len(actives)


#: the name the live scraper and the history import have used since MIG support
MigSplitter = GpuSplitter
