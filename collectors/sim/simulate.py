"""The simulated fleet: serving dynamics, vendor-faithful sensors, faults and ground truth.

``simulate(fleet, home, start, days, interval_s, seed)`` streams one UTC day at a time into
``<home>/spool`` (what real collectors would write) and ``<home>/truth`` (what really happened),
so memory stays bounded by one day of the fleet whatever the length of the run. The sensors are
in collectors/sim/sensors.py, the injected data faults in collectors/sim/faults.py.

Every name that becomes a path goes through :func:`collectors.names.path_component`, so a node
called ``../../outside`` writes inside the home like any other. A seed reproduces the same files
byte for byte (collectors/sim/seeds.py).
"""
from __future__ import annotations

import datetime as dt
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from collectors import spool as spoolmod
from collectors.names import path_component
from collectors.schema import REPLICAS, REQUESTS
from collectors.sim.faults import bad_request_rows, bad_sample_rows, inject_file_faults, spool_file, write_faults
from collectors.sim.fleet import Fleet, load_fleet
from collectors.sim.host import load_host_power, write_host_day
from collectors.sim.seeds import stable_digest
from collectors.sim.sensors import TICK_S, sensor_table, ts_array
from collectors.sim.serving import DONE, run_replica
from collectors.sim.traffic import DAY_S, generate_day

TRUTH_REQUESTS = pa.schema([
    ("request_id", pa.string()), ("replica_id", pa.string()), ("node", pa.string()),
    ("true_active_energy_j", pa.float64()), ("true_energy_j", pa.float64()),
])
TRUTH_DEVICES = pa.schema([
    ("date", pa.date32()), ("node", pa.string()), ("device_id", pa.string()), ("chip", pa.string()),
    ("true_energy_j", pa.float64()), ("true_idle_j", pa.float64()), ("true_active_j", pa.float64()),
    ("true_unused_idle_j", pa.float64()), ("true_idle_w", pa.float64()),
])

@dataclass
class _ReplicaState:
    ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    arrival: np.ndarray = field(default_factory=lambda: np.zeros(0))
    prompt: np.ndarray = field(default_factory=lambda: np.zeros(0))
    completion: np.ndarray = field(default_factory=lambda: np.zeros(0))
    task: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int16))
    language: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int16))
    tier: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int16))
    failed: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    state: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int8))
    sched: np.ndarray = field(default_factory=lambda: np.zeros(0))
    first: np.ndarray = field(default_factory=lambda: np.zeros(0))
    finish: np.ndarray = field(default_factory=lambda: np.zeros(0))
    dec_left: np.ndarray = field(default_factory=lambda: np.zeros(0))
    act_j: np.ndarray = field(default_factory=lambda: np.zeros(0))
    idle_j: np.ndarray = field(default_factory=lambda: np.zeros(0))
    carry_busy: float = 0.0
    next_seq: int = 0

    FIELDS = ("ids", "arrival", "prompt", "completion", "task", "language", "tier", "failed",
              "state", "sched", "first", "finish", "dec_left", "act_j", "idle_j")

    def append(self, new: dict) -> None:
        for f in self.FIELDS:
            setattr(self, f, np.concatenate([getattr(self, f), new[f]]))

    def take(self, mask: np.ndarray) -> dict:
        return {f: getattr(self, f)[mask] for f in self.FIELDS}

    def keep(self, mask: np.ndarray) -> None:
        for f in self.FIELDS:
            setattr(self, f, getattr(self, f)[mask])


@dataclass
class _Device:
    node: str
    index: int
    device_id: str
    uuid: str
    chip: str
    vendor: str
    idle_w: float
    active_factor: float
    phase_s: float
    counter_base_j: float
    energy_total_j: float = 0.0
    replica: int = -1


class Simulator:
    def __init__(self, fleet: Fleet, home: Path, start: dt.date, days: int, interval_s: float, seed: int,
                 progress: bool = True):
        if days < 1:
            raise ValueError("days must be >= 1")
        if not 0.1 <= interval_s <= 3600:
            raise ValueError("interval_s must be between 0.1 and 3600")
        self.fleet = fleet
        self.home = Path(home)
        self.spool = self.home / "spool"
        self.truth = self.home / "truth"
        self.start = start
        self.days = days
        self.interval_s = float(interval_s)
        self.seed = int(seed)
        self.progress = progress
        self.t0 = dt.datetime(start.year, start.month, start.day, tzinfo=dt.timezone.utc).timestamp()
        self.devices: list[_Device] = self._make_devices()
        self.states = [_ReplicaState() for _ in fleet.replicas]
        self.faults: list[dict] = []
        self.late_files: list[tuple[Path, pa.Table]] = []
        self.written: list[Path] = []
        self.stats = {"requests": 0, "samples": 0}
        self.host_power = load_host_power()
        self.host_counters: dict[str, dict[str, float]] = {}

    def _make_devices(self) -> list[_Device]:
        fleet = self.fleet
        rng = np.random.default_rng([self.seed, 0, 0, 7])
        devices: list[_Device] = []
        by_key = {}
        for node in fleet.nodes:
            chip = fleet.chips[node.chip]
            for i in range(node.devices):
                d = _Device(
                    node=node.name, index=i, device_id=f"{node.name}/{i}",
                    uuid=f"GPU-{self.seed:04x}{stable_digest(self.seed, node.name, i) % 16**8:08x}-{i:04d}",
                    chip=chip.id, vendor=chip.vendor,
                    idle_w=chip.idle_power_w * float(rng.uniform(0.95, 1.05)),
                    active_factor=float(rng.uniform(0.97, 1.03)),
                    phase_s=float(rng.uniform(0, self.interval_s)),
                    counter_base_j=float(rng.uniform(1e5, 5e7)),
                )
                devices.append(d)
                by_key[(node.name, i)] = d
        for ri, rep in enumerate(fleet.replicas):
            chip = fleet.chips[rep.chip]
            for i in rep.devices:
                d = by_key[(rep.node, i)]
                d.replica = ri
                d.idle_w += chip.model_loaded_idle_extra_w
        return devices

    # ------------------------------------------------------------------ run
    def run(self) -> dict:
        from collectors.sim.serving import warm_up

        warm_up()
        t_begin = time.perf_counter()
        self._write_replicas()
        for day in range(self.days):
            self._simulate_day(day)
            if self.progress:
                el = time.perf_counter() - t_begin
                print(f"  simulate: day {day + 1}/{self.days} done "
                      f"({self.stats['requests']:,} requests, {self.stats['samples']:,} samples, {el:.1f} s)",
                      file=sys.stderr, flush=True)
        inject_file_faults(self)
        write_faults(self)
        meta = {
            "fleet": self.fleet.name, "fleet_source": self.fleet.source, "start": self.start.isoformat(),
            "days": self.days, "interval_s": self.interval_s, "seed": self.seed,
            "requests": self.stats["requests"], "samples": self.stats["samples"],
            "elapsed_s": round(time.perf_counter() - t_begin, 3),
            "node_sites": {n.name: n.site for n in self.fleet.nodes},
        }
        (self.home / "sim.json").write_text(json.dumps(meta, indent=2))
        return meta

    def _write_replicas(self) -> None:
        f = self.fleet
        for node in f.nodes:
            reps = [r for r in f.replicas if r.node == node.name]
            if not reps:
                continue
            tbl = pa.table({
                "replica_id": [r.id for r in reps], "node": [r.node for r in reps],
                "model": [r.model for r in reps], "chip": [r.chip for r in reps],
                "device_ids": [list(r.device_ids()) for r in reps],
                "valid_from": ts_array(np.full(len(reps), self.t0)),
            }, schema=REPLICAS)
            spoolmod.write_partition(self.spool, "replicas", self.start.isoformat(), node.name, tbl,
                                     name=f"{node.name}-replicas")

    def _simulate_day(self, day: int) -> None:
        day_start = self.t0 + day * DAY_S
        date = (self.start + dt.timedelta(days=day)).isoformat()
        served = [self._serve_replica(ri, rep, day, day_start) for ri, rep in enumerate(self.fleet.replicas)]
        self._write_requests(day, date, served)
        self._write_devices(day, date, day_start, served)

    def _serve_replica(self, ri: int, rep, day: int, day_start: float) -> dict:
        """One day of replica ``ri``: arrivals, serving (numba), finished requests and per-tick outputs."""
        f = self.fleet
        n_ticks = int(DAY_S / TICK_S)
        st = self.states[ri]
        arr = generate_day(f, ri, rep, day_start, self.t0, self.seed, day)
        n = arr.arrival.shape[0]
        ids = (np.int64(ri) * 10_000 + day) * 100_000_000 + np.arange(n, dtype=np.int64)
        st.append({
            "ids": ids, "arrival": arr.arrival, "prompt": arr.prompt, "completion": arr.completion,
            "task": arr.task, "language": arr.language, "tier": arr.tier, "failed": arr.failed,
            "state": np.zeros(n, np.int8), "sched": np.full(n, np.nan), "first": np.full(n, np.nan),
            "finish": np.full(n, np.nan), "dec_left": np.zeros(n), "act_j": np.zeros(n), "idle_j": np.zeros(n),
        })
        perf = f.perf_for(rep)
        chip = f.chips[rep.chip]
        devs = [d for d in self.devices if d.replica == ri]
        idle_dev = float(np.mean([d.idle_w for d in devs]))
        out = {"active": np.zeros(n_ticks), "busy": np.zeros(n_ticks), "batch": np.zeros(n_ticks, np.int32)}
        st.carry_busy, _unused = run_replica(
            day_start, n_ticks, TICK_S,
            st.arrival, st.prompt, st.completion,
            st.state, st.sched, st.first, st.finish, st.dec_left, st.act_j, st.idle_j,
            perf.prefill_tokens_per_s, perf.decode_t0_ms / 1000, perf.decode_t1_ms / 1000, perf.max_batch,
            max(perf.prefill_power_w - idle_dev, 0.0), perf.decode_power_a_w, perf.decode_power_c_w,
            idle_dev, chip.rated_power_w,
            float(sum(d.idle_w for d in devs)), float(sum(d.active_factor for d in devs)), 0.5, st.carry_busy,
            out["active"], out["busy"], out["batch"],
        )
        done = st.state == DONE
        fin = st.take(done)
        st.keep(~done)
        self.stats["requests"] += int(done.sum())
        out["requests"], out["truth"] = self._request_tables(rep, fin)
        return out

    def _write_requests(self, day: int, date: str, served: list[dict]) -> None:
        """The day's finished requests (spool) and their true energy (truth), one file per node."""
        done_by_node: dict[str, list[pa.Table]] = {}
        truth_by_node: dict[str, list[pa.Table]] = {}
        for rep, out in zip(self.fleet.replicas, served):
            done_by_node.setdefault(rep.node, []).append(out["requests"])
            truth_by_node.setdefault(rep.node, []).append(out["truth"])
        for node, tables in done_by_node.items():
            tbl = bad_request_rows(self, pa.concat_tables(tables), node, date, day)
            self._write("requests", date, node, tbl, f"{node}-{date}")
            spoolmod.write_atomic(pa.concat_tables(truth_by_node[node]),
                                  spoolmod.partition_dir(self.truth, "requests", date, node)
                                  / f"{path_component(f'{node}-{date}')}.parquet")

    def _write_devices(self, day: int, date: str, day_start: float, served: list[dict]) -> None:
        """The day's device samples (spool), per-device and per-minute true energy (truth)."""
        n_ticks = int(DAY_S / TICK_S)
        dev_truth = []
        minute_tables: list[pa.Table] = []
        by_node: dict[str, list[pa.Table]] = {}
        node_power: dict[str, np.ndarray] = {}
        for d in self.devices:
            if d.replica >= 0:
                out = served[d.replica]
                active, busy, batch = out["active"] * d.active_factor, out["busy"], out["batch"]
            else:
                active, busy, batch = np.zeros(n_ticks), np.zeros(n_ticks), np.zeros(n_ticks, np.int32)
            power = d.idle_w + active
            node_power[d.node] = node_power.get(d.node, 0.0) + power
            e_idle = d.idle_w * DAY_S
            e_act = float(active.sum() * TICK_S)
            unused = float(d.idle_w * TICK_S * np.count_nonzero(active <= 0.0))
            dev_truth.append((date, d, e_idle + e_act, e_idle, e_act, unused))
            minute_tables.append(self._minute_truth(d, day_start, power, active))
            by_node.setdefault(d.node, []).append(sensor_table(self, d, day, day_start, power, busy, batch))
            d.energy_total_j += e_idle + e_act
        for node, tables in by_node.items():
            tbl = pa.concat_tables(tables)
            self.stats["samples"] += tbl.num_rows
            tbl = bad_sample_rows(self, tbl, node, date, day)
            self._write("device_samples", date, node, tbl, f"{node}-{date}")
        write_host_day(self, date, day_start, node_power)
        dtbl = pa.table({
            "date": pa.array([dt.date.fromisoformat(x[0]) for x in dev_truth], pa.date32()),
            "node": [x[1].node for x in dev_truth], "device_id": [x[1].device_id for x in dev_truth],
            "chip": [x[1].chip for x in dev_truth],
            "true_energy_j": [x[2] for x in dev_truth], "true_idle_j": [x[3] for x in dev_truth],
            "true_active_j": [x[4] for x in dev_truth], "true_unused_idle_j": [x[5] for x in dev_truth],
            "true_idle_w": [x[1].idle_w for x in dev_truth],
        }, schema=TRUTH_DEVICES)
        spoolmod.write_atomic(dtbl, self.truth / "devices" / f"date={date}" / f"devices-{date}.parquet")
        # per device and minute: true energy, to score interval-level attribution
        spoolmod.write_atomic(pa.concat_tables(minute_tables),
                              self.truth / "device_minutes" / f"date={date}" / f"device-minutes-{date}.parquet")

    @staticmethod
    def _minute_truth(d: _Device, day_start: float, power: np.ndarray, active: np.ndarray) -> pa.Table:
        per_minute = int(60 / TICK_S)
        minute_e = (power * TICK_S).reshape(-1, per_minute).sum(axis=1)
        return pa.table({
            "minute_ts": ts_array(day_start + 60.0 * np.arange(minute_e.shape[0])),
            "device_id": pa.array([d.device_id] * minute_e.shape[0], pa.string()),
            "true_energy_j": pa.array(minute_e),
            "true_active_j": pa.array((active * TICK_S).reshape(-1, per_minute).sum(axis=1)),
        })

    def _request_tables(self, rep, fin: dict) -> tuple[pa.Table, pa.Table]:
        f = self.fleet
        n = fin["ids"].shape[0]
        ids = pc.binary_join_element_wise(pa.scalar("req-"), pa.array(fin["ids"]).cast(pa.string()), pa.scalar(""))
        task_names = np.array(list(f.tasks.keys()), dtype=object)
        lang_names = np.array(list(f.traffic.languages.keys()), dtype=object)
        tier_names = np.array(list(f.traffic.tiers.keys()), dtype=object)
        status = np.where(fin["failed"], "error", "ok").astype(object)
        completion = fin["completion"].astype(np.int64)
        req = pa.table({
            "request_id": ids, "node": pa.array([rep.node] * n, pa.string()),
            "replica_id": pa.array([rep.id] * n, pa.string()), "model": pa.array([rep.model] * n, pa.string()),
            "task": pa.array(task_names[fin["task"]], pa.string()),
            "language": pa.array(lang_names[fin["language"]], pa.string()),
            "tier": pa.array(tier_names[fin["tier"]], pa.string()),
            "arrival_ts": ts_array(fin["arrival"]), "scheduled_ts": ts_array(fin["sched"]),
            "first_token_ts": ts_array(fin["first"]), "finish_ts": ts_array(fin["finish"]),
            "prompt_tokens": pa.array(fin["prompt"].astype(np.int64)),
            "completion_tokens": pa.array(completion),
            "status": pa.array(status, pa.string()),
        }, schema=REQUESTS)
        truth = pa.table({
            "request_id": ids, "replica_id": pa.array([rep.id] * n, pa.string()),
            "node": pa.array([rep.node] * n, pa.string()),
            "true_active_energy_j": pa.array(fin["act_j"]),
            "true_energy_j": pa.array(fin["act_j"] + fin["idle_j"]),
        }, schema=TRUTH_REQUESTS)
        return req, truth

    def _write(self, kind: str, date: str, node: str, tbl: pa.Table, name: str) -> None:
        lf = self.fleet.faults.get("late_file")
        if lf and kind == "requests" and date == (self.start + dt.timedelta(days=int(lf.get("day", 0)))).isoformat() \
                and node == self.fleet.nodes[-1].name:
            late = spoolmod.partition_dir(self.spool, kind, date, node) / f"{path_component(name)}-late.parquet"
            self.late_files.append((late, tbl))
            on_time = spool_file(kind, date, node)
            for fault in self.faults:  # bad rows of this file: name the file that will be on disk
                if fault.get("file") == on_time:
                    fault["file"] = late.relative_to(self.spool).as_posix()
            return
        path = spoolmod.write_partition(self.spool, kind, date, node, tbl, name=name)
        self.written.append(path)


def simulate(fleet: str | Path | Fleet, home: str | Path, start: str | dt.date = "2026-10-01", days: int = 28,
             interval_s: float = 1.0, seed: int = 42, progress: bool = True) -> dict:
    """Simulate ``days`` UTC days of ``fleet`` into ``home``; returns the run's metadata."""
    fl = fleet if isinstance(fleet, Fleet) else load_fleet(fleet)
    if isinstance(start, str):
        start = dt.date.fromisoformat(start)
    home = Path(home)
    home.mkdir(parents=True, exist_ok=True)
    return Simulator(fl, home, start, days, interval_s, seed, progress).run()
