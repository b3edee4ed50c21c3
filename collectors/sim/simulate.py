"""The simulated fleet: serving dynamics, vendor-faithful sensors, faults and ground truth.

``simulate(fleet, home, start, days, interval_s, seed)`` streams one UTC day at a time into
``<home>/spool`` (what real collectors would write) and ``<home>/truth`` (what really happened),
so memory stays bounded by one day of the fleet whatever the length of the run.
"""
from __future__ import annotations

import datetime as dt
import json
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from collectors import spool as spoolmod
from collectors.sim.fleet import Fleet, load_fleet
from collectors.schema import DEVICE_SAMPLES, REPLICAS, REQUESTS, TS
from collectors.sim.serving import DONE, run_replica
from collectors.sim.traffic import DAY_S, generate_day

TICK_S = 1.0
MISSED_SAMPLE_P = 0.002

TRUTH_REQUESTS = pa.schema([
    ("request_id", pa.string()), ("replica_id", pa.string()), ("node", pa.string()),
    ("true_active_energy_j", pa.float64()), ("true_energy_j", pa.float64()),
])
TRUTH_DEVICES = pa.schema([
    ("date", pa.date32()), ("node", pa.string()), ("device_id", pa.string()), ("chip", pa.string()),
    ("true_energy_j", pa.float64()), ("true_idle_j", pa.float64()), ("true_active_j", pa.float64()),
    ("true_unused_idle_j", pa.float64()), ("true_idle_w", pa.float64()),
])
TRUTH_FAULTS = pa.schema([
    ("fault", pa.string()), ("node", pa.string()), ("device_id", pa.string()), ("file", pa.string()),
    ("row", pa.int64()), ("field", pa.string()), ("detail", pa.string()), ("ts", TS),
])


def _ts(seconds: np.ndarray) -> pa.Array:
    return pa.array(np.round(np.asarray(seconds, dtype=np.float64) * 1e6).astype(np.int64), type=pa.int64()).cast(TS)


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
        rng = np.random.default_rng([self.seed, 0, 0, 7])
        self.devices: list[_Device] = []
        dev_by_key = {}
        for node in fleet.nodes:
            chip = fleet.chips[node.chip]
            for i in range(node.devices):
                d = _Device(
                    node=node.name, index=i, device_id=f"{node.name}/{i}",
                    uuid=f"GPU-{self.seed:04x}{abs(hash((node.name, i))) % 16**8:08x}-{i:04d}",
                    chip=chip.id, vendor=chip.vendor,
                    idle_w=chip.idle_power_w * float(rng.uniform(0.95, 1.05)),
                    active_factor=float(rng.uniform(0.97, 1.03)),
                    phase_s=float(rng.uniform(0, self.interval_s)),
                    counter_base_j=float(rng.uniform(1e5, 5e7)),
                )
                self.devices.append(d)
                dev_by_key[(node.name, i)] = d
        for ri, rep in enumerate(fleet.replicas):
            chip = fleet.chips[rep.chip]
            for i in rep.devices:
                d = dev_by_key[(rep.node, i)]
                d.replica = ri
                d.idle_w += chip.model_loaded_idle_extra_w
        self.states = [_ReplicaState() for _ in fleet.replicas]
        self.faults: list[dict] = []
        self.late_files: list[tuple[Path, pa.Table]] = []
        self.written: list[Path] = []
        self.stats = {"requests": 0, "samples": 0}

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
        self._inject_file_faults()
        self._write_faults()
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
                "valid_from": _ts(np.full(len(reps), self.t0)),
            }, schema=REPLICAS)
            spoolmod.write_partition(self.spool, "replicas", self.start.isoformat(), node.name, tbl,
                                     name=f"{node.name}-replicas")

    def _simulate_day(self, day: int) -> None:
        f = self.fleet
        day_start = self.t0 + day * DAY_S
        date = (self.start + dt.timedelta(days=day)).isoformat()
        n_ticks = int(DAY_S / TICK_S)
        rep_active = {}
        rep_busy = {}
        rep_batch = {}
        done_by_node: dict[str, list[pa.Table]] = {}
        truth_by_node: dict[str, list[pa.Table]] = {}
        for ri, rep in enumerate(f.replicas):
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
            out_a = np.zeros(n_ticks)
            out_b = np.zeros(n_ticks)
            out_n = np.zeros(n_ticks, np.int32)
            st.carry_busy, _unused = run_replica(
                day_start, n_ticks, TICK_S,
                st.arrival, st.prompt, st.completion,
                st.state, st.sched, st.first, st.finish, st.dec_left, st.act_j, st.idle_j,
                perf.prefill_tokens_per_s, perf.decode_t0_ms / 1000, perf.decode_t1_ms / 1000, perf.max_batch,
                max(perf.prefill_power_w - idle_dev, 0.0), perf.decode_power_a_w, perf.decode_power_c_w,
                idle_dev, chip.rated_power_w,
                float(sum(d.idle_w for d in devs)), float(sum(d.active_factor for d in devs)), 0.5, st.carry_busy,
                out_a, out_b, out_n,
            )
            rep_active[ri], rep_busy[ri], rep_batch[ri] = out_a, out_b, out_n
            done = st.state == DONE
            fin = st.take(done)
            st.keep(~done)
            self.stats["requests"] += int(done.sum())
            req, truth = self._request_tables(rep, fin)
            done_by_node.setdefault(rep.node, []).append(req)
            truth_by_node.setdefault(rep.node, []).append(truth)
        # requests and request truth
        for node, tables in done_by_node.items():
            tbl = pa.concat_tables(tables)
            tbl = self._maybe_bad_request_rows(tbl, node, date, day)
            self._write("requests", date, node, tbl, f"{node}-{date}")
            spoolmod.write_atomic(pa.concat_tables(truth_by_node[node]),
                                  spoolmod.partition_dir(self.truth, "requests", date, node) / f"{node}-{date}.parquet")
        # devices: true power, sensors, device truth
        dev_truth = []
        minute_tables: list[pa.Table] = []
        by_node: dict[str, list[pa.Table]] = {}
        for d in self.devices:
            if d.replica >= 0:
                active = rep_active[d.replica] * d.active_factor
                busy = rep_busy[d.replica]
                batch = rep_batch[d.replica]
            else:
                active = np.zeros(n_ticks)
                busy = np.zeros(n_ticks)
                batch = np.zeros(n_ticks, np.int32)
            power = d.idle_w + active
            e_idle = d.idle_w * DAY_S
            e_act = float(active.sum() * TICK_S)
            unused = float(d.idle_w * TICK_S * np.count_nonzero(active <= 0.0))
            dev_truth.append((date, d, e_idle + e_act, e_idle, e_act, unused))
            minute_e = (power * TICK_S).reshape(-1, int(60 / TICK_S)).sum(axis=1)
            minute_tables.append(pa.table({
                "minute_ts": _ts(day_start + 60.0 * np.arange(minute_e.shape[0])),
                "device_id": pa.array([d.device_id] * minute_e.shape[0], pa.string()),
                "true_energy_j": pa.array(minute_e),
                "true_active_j": pa.array((active * TICK_S).reshape(-1, int(60 / TICK_S)).sum(axis=1)),
            }))
            by_node.setdefault(d.node, []).append(self._sensor_table(d, day, day_start, power, busy, batch))
            d.energy_total_j += e_idle + e_act
        for node, tables in by_node.items():
            tbl = pa.concat_tables(tables)
            self.stats["samples"] += tbl.num_rows
            tbl = self._maybe_bad_sample_rows(tbl, node, date, day)
            self._write("device_samples", date, node, tbl, f"{node}-{date}")
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
            "arrival_ts": _ts(fin["arrival"]), "scheduled_ts": _ts(fin["sched"]),
            "first_token_ts": _ts(fin["first"]), "finish_ts": _ts(fin["finish"]),
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

    # -------------------------------------------------------------- sensors
    def _sensor_table(self, d: _Device, day: int, day_start: float, power: np.ndarray, busy: np.ndarray,
                      batch: np.ndarray) -> pa.Table:
        f = self.fleet
        chip = f.chips[d.chip]
        sensor = chip.sensor
        rng = np.random.default_rng([self.seed, day, 10_000 + self.devices.index(d), 3])
        S = self.interval_s
        n_s = int(np.floor((DAY_S - d.phase_s) / S - 1e-9)) + 1
        t = day_start + d.phase_s + np.arange(n_s) * S + rng.uniform(0.0, min(0.02, S / 10), n_s)
        t = t[t < day_start + DAY_S]
        cum = np.concatenate([[0.0], np.cumsum(power * TICK_S)])

        def energy_at(tt: np.ndarray) -> np.ndarray:
            x = np.clip(tt - day_start, 0.0, DAY_S)
            k = np.minimum((x // TICK_S).astype(np.int64), power.shape[0] - 1)
            return cum[k] + power[k] * (x - k * TICK_S)

        e_t = energy_at(t)
        k_t = np.minimum(((t - day_start) // TICK_S).astype(np.int64), power.shape[0] - 1)
        if sensor.power_kind == "avg_1s":
            pw = (e_t - energy_at(t - 1.0)) / np.minimum(1.0, np.maximum(t - day_start, 1e-9))
        elif sensor.power_kind == "avg_window":
            w = max(sensor.power_window_s, 1e-3)
            pw = (e_t - energy_at(t - w)) / np.minimum(w, np.maximum(t - day_start, 1e-9))
        else:
            pw = power[k_t]
        pw = pw * (1.0 + sensor.power_noise_rel * rng.standard_normal(t.shape[0]))
        pw = np.round(pw, 0 if d.vendor == "amd" else 3)
        counter = d.counter_base_j + d.energy_total_j + e_t
        # driver reload / counter reset fault: the counter restarts from zero at that instant
        cr = f.faults.get("counter_reset")
        if cr and cr.get("node") == d.node and int(cr.get("device", -1)) == d.index:
            at = self.t0 + int(cr.get("day", 0)) * DAY_S + float(cr.get("at_s", 0))
            if day_start <= at < day_start + DAY_S:
                self.faults.append({"fault": "counter_reset", "node": d.node, "device_id": d.device_id,
                                    "detail": f"energy counter restarts at 0 at {at}", "ts": at})
                e_reset = d.energy_total_j + float(energy_at(np.array([at]))[0])
                counter = np.where(t >= at, counter - (d.counter_base_j + e_reset), counter)
                d.counter_base_j = -e_reset
        counter = np.floor(counter / sensor.counter_unit_j) * sensor.counter_unit_j
        if sensor.counter_wrap_j:
            counter = np.mod(counter, sensor.counter_wrap_j)
        util = np.round(busy[k_t] * 100.0, 0)
        rep = f.replicas[d.replica] if d.replica >= 0 else None
        model = f.models[rep.model] if rep else None
        tp = len(rep.devices) if rep else 1
        mem = np.full(t.shape[0], 512.0)
        if model:
            mem = mem + model.weights_gb * 1024 / tp + batch[k_t] * 1500 * model.kv_mb_per_token / tp
        temp = np.round(30.0 + 0.055 * pw + rng.normal(0, 0.5, t.shape[0]), 0)
        clock = np.where(busy[k_t] > 0, 1755.0 if d.vendor == "nvidia" else 2100.0, 345.0)
        keep = rng.random(t.shape[0]) >= MISSED_SAMPLE_P
        dl = f.faults.get("device_lost")
        if dl and dl.get("node") == d.node and int(dl.get("device", -1)) == d.index:
            a = self.t0 + int(dl.get("day", 0)) * DAY_S + float(dl.get("start_s", 0))
            b = a + float(dl.get("duration_s", 600))
            lost = (t >= a) & (t < b)
            if lost.any():
                keep &= ~lost
                self.faults.append({"fault": "device_lost", "node": d.node, "device_id": d.device_id,
                                    "detail": f"no samples from {a} for {b - a:.0f} s ({int(lost.sum())} samples)",
                                    "ts": a})
        skew = 0.0
        cs = f.faults.get("clock_skew")
        if cs and cs.get("node") == d.node:
            skew = float(cs.get("skew_s", 0.0))
            if day == 0 and d.index == 0:
                self.faults.append({"fault": "clock_skew", "node": d.node, "device_id": None,
                                    "detail": f"node clock ahead by {skew} s", "ts": day_start})
        n = int(keep.sum())
        return pa.table({
            "ts": _ts(t[keep] + skew), "node": pa.array([d.node] * n, pa.string()),
            "device_id": pa.array([d.device_id] * n, pa.string()),
            "device_index": pa.array(np.full(n, d.index, np.int32)),
            "device_uuid": pa.array([d.uuid] * n, pa.string()), "chip": pa.array([d.chip] * n, pa.string()),
            "vendor": pa.array([d.vendor] * n, pa.string()), "power_w": pa.array(pw[keep]),
            "power_kind": pa.array([sensor.power_kind] * n, pa.string()),
            "energy_counter_j": pa.array(counter[keep]), "utilization_pct": pa.array(util[keep]),
            "memory_used_mib": pa.array(np.round(mem[keep], 0)), "temperature_c": pa.array(temp[keep]),
            "sm_clock_mhz": pa.array(clock[keep]),
            "power_limit_w": pa.array(np.full(n, chip.rated_power_w)),
            "source": pa.array(["sim"] * n, pa.string()),
        }, schema=DEVICE_SAMPLES)

    # ---------------------------------------------------------------- faults
    def _write(self, kind: str, date: str, node: str, tbl: pa.Table, name: str) -> None:
        lf = self.fleet.faults.get("late_file")
        if lf and kind == "requests" and date == (self.start + dt.timedelta(days=int(lf.get("day", 0)))).isoformat() \
                and node == self.fleet.nodes[-1].name:
            self.late_files.append((spoolmod.partition_dir(self.spool, kind, date, node) / f"{name}-late.parquet", tbl))
            return
        path = spoolmod.write_partition(self.spool, kind, date, node, tbl, name=name)
        self.written.append(path)

    def _maybe_bad_sample_rows(self, tbl: pa.Table, node: str, date: str, day: int) -> pa.Table:
        n_bad = int(self.fleet.faults.get("bad_rows", 0) or 0)
        if not n_bad or day != 0 or tbl.num_rows < 100:
            return tbl
        rng = np.random.default_rng([self.seed, day, 99, hash(node) % 1000])
        rows = rng.choice(tbl.num_rows, size=min(n_bad, tbl.num_rows), replace=False)
        power = tbl["power_w"].to_numpy(zero_copy_only=False).copy()
        util = tbl["utilization_pct"].to_numpy(zero_copy_only=False).copy()
        ts = tbl["ts"]
        rel = f"device_samples/date={date}/node={node}/{node}-{date}.parquet"
        for j, r in enumerate(sorted(rows)):
            kind = j % 3
            if kind == 0:
                power[r] = -25.0
                fld, why = "power_w", "negative power"
            elif kind == 1:
                util[r] = 150.0
                fld, why = "utilization_pct", "utilization outside 0-100"
            else:
                power[r] = 50_000.0
                fld, why = "power_w", "power above physical bound for chip"
            self.faults.append({"fault": "bad_row", "node": node, "device_id": tbl["device_id"][int(r)].as_py(),
                                "file": rel, "row": int(r), "field": fld, "detail": why,
                                "ts": ts[int(r)].value / 1e6})
        tbl = tbl.set_column(tbl.schema.get_field_index("power_w"), "power_w", pa.array(power))
        return tbl.set_column(tbl.schema.get_field_index("utilization_pct"), "utilization_pct", pa.array(util))

    def _maybe_bad_request_rows(self, tbl: pa.Table, node: str, date: str, day: int) -> pa.Table:
        n_bad = int(self.fleet.faults.get("bad_rows", 0) or 0)
        if not n_bad or day != 0 or tbl.num_rows < 100:
            return tbl
        rng = np.random.default_rng([self.seed, day, 98, hash(node) % 1000])
        rows = sorted(rng.choice(tbl.num_rows, size=min(max(n_bad // 3, 1), tbl.num_rows), replace=False))
        toks = tbl["prompt_tokens"].to_numpy().copy()
        rel = f"requests/date={date}/node={node}/{node}-{date}.parquet"
        for r in rows:
            toks[r] = -5
            self.faults.append({"fault": "bad_row", "node": node, "device_id": None, "file": rel, "row": int(r),
                                "field": "prompt_tokens", "detail": "negative token count",
                                "ts": tbl["arrival_ts"][int(r)].value / 1e6,
                                "request_id": tbl["request_id"][int(r)].as_py()})
        return tbl.set_column(tbl.schema.get_field_index("prompt_tokens"), "prompt_tokens", pa.array(toks))

    def _inject_file_faults(self) -> None:
        f = self.fleet.faults
        rng = np.random.default_rng([self.seed, 0, 0, 11])
        samples = [p for p in self.written if "/device_samples/" in str(p)]
        reqs = [p for p in self.written if "/requests/" in str(p)]
        ndup = int(f.get("duplicate_files", 0) or 0)
        for j in range(ndup):
            pool = samples if j % 2 == 0 else reqs
            if not pool:
                continue
            src = pool[int(rng.integers(len(pool)))]
            dst = src.with_name(src.stem + f"-dup{j}.parquet")
            shutil.copyfile(src, dst)
            self.faults.append({"fault": "duplicate_file", "file": str(dst.relative_to(self.spool)),
                                "detail": f"byte-identical copy of {src.relative_to(self.spool)}"})
        if f.get("truncated_file") and samples:
            src = samples[int(rng.integers(len(samples)))]
            data = src.read_bytes()
            dst = src.with_name(src.stem + "-truncated.parquet")
            tmp = dst.with_name("." + dst.name + ".tmp")
            tmp.write_bytes(data[: len(data) * 6 // 10])
            tmp.replace(dst)
            self.faults.append({"fault": "truncated_file", "file": str(dst.relative_to(self.spool)),
                                "detail": f"first 60% of the bytes of {src.relative_to(self.spool)} (its rows are also in the original)"})
        for path, tbl in self.late_files:
            spoolmod.write_atomic(tbl, path)
            self.faults.append({"fault": "late_file", "file": str(path.relative_to(self.spool)),
                                "detail": "delivered after every later day had been written"})

    def _write_faults(self) -> None:
        rows = self.faults
        tbl = pa.table({
            "fault": [r["fault"] for r in rows], "node": [r.get("node") for r in rows],
            "device_id": [r.get("device_id") for r in rows], "file": [r.get("file") for r in rows],
            "row": pa.array([r.get("row") for r in rows], pa.int64()), "field": [r.get("field") for r in rows],
            "detail": [r.get("detail") for r in rows],
            "ts": pa.array([None if r.get("ts") is None else int(round(r["ts"] * 1e6)) for r in rows],
                           pa.int64()).cast(TS),
        }, schema=TRUTH_FAULTS)
        spoolmod.write_atomic(tbl, self.truth / "faults.parquet")


def simulate(fleet: str | Path | Fleet, home: str | Path, start: str | dt.date = "2026-10-01", days: int = 28,
             interval_s: float = 1.0, seed: int = 42, progress: bool = True) -> dict:
    """Simulate ``days`` UTC days of ``fleet`` into ``home``; returns the run's metadata."""
    fl = fleet if isinstance(fleet, Fleet) else load_fleet(fleet)
    if isinstance(start, str):
        start = dt.date.fromisoformat(start)
    home = Path(home)
    home.mkdir(parents=True, exist_ok=True)
    return Simulator(fl, home, start, days, interval_s, seed, progress).run()
