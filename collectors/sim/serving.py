"""Continuous-batching serving dynamics of one replica, compiled with numba.

The replica runs in ticks of ``dt`` seconds. At the start of a tick, queued requests that have
arrived are admitted in arrival order while the batch has room and prefill time is left (prefill is
capped to a share of the tick while requests are decoding, as chunked prefill does; a request
arriving while the batch decodes waits for the next admission rather than stall the batch). The
rest of the tick decodes every running request at ``decode_step(b) = t0 + t1 * b`` seconds per
token and power ``P(b)``, ``b`` the batch decoding at that moment: when a request finishes, the
batch shrinks, and a freed slot is refilled from the queue (prefill pausing the decode) while the
prefill share of the tick allows. Time-to-first-token and latency therefore grow with load, and the
replica's power follows its batch.

Ground truth: the active energy of each tick (power above idle, summed over the replica's devices)
is given to the requests that did the work in that tick: prefill energy to the request prefilled,
decode energy split per token decoded. The tick's idle energy is shared in proportion to active
energy (the "fully loaded" truth); with no work in a tick, idle energy is unused capacity.
"""
from __future__ import annotations

import math

import numba
import numpy as np

QUEUED, RUNNING, DONE = 0, 1, 2


@numba.njit(cache=True)
def _admit_and_prefill(qhead, nr, nc, c, limit, tend, T, max_batch, max_prefill_frac, dt, prefill_tps,
                       prefill_w, arrival, prompt, completion, state, sched, first, finish, dec_left, act_j,
                       running, contrib_idx, contrib_e, prefill_time, tick_e):
    """Admit queued requests in arrival order and prefill them from ``c`` while the batch and the
    tick allow; ``prefill_time`` and ``tick_e`` are added to."""
    n = arrival.shape[0]
    while qhead < n and nr < max_batch and nc < contrib_idx.shape[0]:
        if state[qhead] != QUEUED:
            qhead += 1
            continue
        a = arrival[qhead]
        if a >= tend:
            break
        if nr > 0 and a > c:
            break  # the batch decodes rather than wait for this arrival: admitted at the next tick
        s = c if c > a else a
        if s >= limit:
            break
        pd = prompt[qhead] / prefill_tps
        sched[qhead] = s
        c = s + pd
        first[qhead] = c
        prefill_time += pd
        e = prefill_w * pd
        contrib_idx[nc] = qhead  # a participant of the tick, with its energy before it (see run_replica)
        contrib_e[nc] = act_j[qhead]
        nc += 1
        act_j[qhead] += e
        tick_e += e
        if completion[qhead] <= 1:
            finish[qhead] = c
            state[qhead] = DONE
        else:
            dec_left[qhead] = completion[qhead] - 1.0
            state[qhead] = RUNNING
            running[nr] = qhead
            nr += 1
        qhead += 1
        if nr > 0:
            limit = T + max_prefill_frac * dt
            if limit < c:
                limit = c
    return qhead, nr, nc, c, prefill_time, tick_e


@numba.njit(cache=True)
def _decode_until(running, nr, t, tend, t0_s, t1_s, dec_a_w, dec_c_w, idle_w_dev, rated_w, scale,
                  dec_left, act_j, finish, state, tick_e):
    """Decode the batch from ``t`` until ``tend`` or the first request finishes, at the step time
    and power of the current batch. Returns (nr, tick_e, time reached, whether one finished)."""
    b = nr
    tau = t0_s + t1_s * b
    p = dec_a_w + dec_c_w * math.log(b if b > 1 else 1.0)
    if p > rated_w:
        p = rated_w
    p = p - idle_w_dev
    if p < 0.0:
        p = 0.0
    steps = (tend - t) / tau
    until_tend = True
    for j in range(nr):
        if dec_left[running[j]] < steps:
            steps = dec_left[running[j]]
            until_tend = False
    e = p * scale * tau / b * steps
    j = 0
    while j < nr:
        q = running[j]
        act_j[q] += e
        tick_e += e
        dec_left[q] -= steps
        if dec_left[q] <= 1e-9:
            finish[q] = t + steps * tau
            state[q] = DONE
            running[j] = running[nr - 1]
            nr -= 1
        else:
            j += 1
    return nr, tick_e, (tend if until_tend else t + steps * tau), not until_tend


@numba.njit(cache=True)
def run_replica(
    t_start, n_ticks, dt,
    arrival, prompt, completion,
    state, sched, first, finish, dec_left, act_j, idle_j,
    prefill_tps, t0_s, t1_s, max_batch, prefill_active_w, dec_a_w, dec_c_w, idle_w_dev, rated_w,
    idle_total_w, active_scale, max_prefill_frac, carry_busy_s,
    out_active_w, out_busy, out_batch,
):
    """Advance one replica over ``n_ticks``; arrays are updated in place.

    Requests must be sorted by arrival. ``state`` is QUEUED/RUNNING/DONE. Per-tick outputs are
    per-device active power (W above idle, before the device's own scale), busy fraction and
    batch size. Returns (carry_busy_s, unused_idle_j).
    """
    n = arrival.shape[0]
    running = np.empty(max_batch, np.int64)
    nr = 0
    # requests already running (carried from the previous chunk) re-enter the batch
    qhead = 0
    for i in range(n):
        if state[i] == RUNNING and nr < max_batch:
            running[nr] = i
            nr += 1
    while qhead < n and state[qhead] != QUEUED:
        qhead += 1
    contrib_idx = np.empty(4 * max_batch + 64, np.int64)  # a tick's participants (admission stops when full)
    contrib_e = np.empty(4 * max_batch + 64, np.float64)
    unused_idle = 0.0
    carry = carry_busy_s
    for k in range(n_ticks):
        T = t_start + k * dt
        tend = T + dt
        c = T + carry
        spill_in = prefill_active_w * active_scale * carry
        nc = 0
        for j in range(nr):  # the decoders entering the tick, with their energy before it
            contrib_idx[nc] = running[j]
            contrib_e[nc] = act_j[running[j]]
            nc += 1
        cap = T + max_prefill_frac * dt
        limit = tend if nr == 0 else cap
        # admission and prefill
        qhead, nr, nc, c, busy, tick_e = _admit_and_prefill(
            qhead, nr, nc, c, limit, tend, T, max_batch, max_prefill_frac, dt, prefill_tps,
            prefill_active_w * active_scale, arrival, prompt, completion, state, sched, first, finish,
            dec_left, act_j, running, contrib_idx, contrib_e, 0.0, 0.0)
        out_batch[k] = nr
        # decode; a finish frees a slot, refilled from the queue while the prefill share allows
        t = c if c > T else T
        while t < tend and nr > 0:
            t_before = t
            nr, tick_e, t, freed = _decode_until(running, nr, t, tend, t0_s, t1_s, dec_a_w, dec_c_w, idle_w_dev,
                                                 rated_w, active_scale, dec_left, act_j, finish, state, tick_e)
            busy += t - t_before
            if freed and t < tend:
                qhead, nr, nc, c2, busy, tick_e = _admit_and_prefill(
                    qhead, nr, nc, t, tend if nr == 0 else cap, tend, T, max_batch, max_prefill_frac, dt,
                    prefill_tps, prefill_active_w * active_scale, arrival, prompt, completion, state, sched,
                    first, finish, dec_left, act_j, running, contrib_idx, contrib_e, busy, tick_e)
                if c2 > t:
                    c = c2
                    t = c2
        carry = c - tend if c > tend else 0.0
        if busy > dt:
            busy = dt
        out_busy[k] = busy / dt
        spill_out = prefill_active_w * active_scale * carry
        out_active_w[k] = (tick_e + spill_in - spill_out) / dt / active_scale
        for m in range(nc):  # each participant's energy gained this tick
            contrib_e[m] = act_j[contrib_idx[m]] - contrib_e[m]
        idle_e = idle_total_w * dt
        if tick_e > 0.0:
            for m in range(nc):
                idle_j[contrib_idx[m]] += idle_e * contrib_e[m] / tick_e
        else:
            unused_idle += idle_e
    return carry, unused_idle


def warm_up() -> None:
    """Compile the kernel once (numba caches it on disk)."""
    z = np.zeros(1)
    run_replica(
        0.0, 2, 1.0, np.array([0.1]), np.array([10.0]), np.array([3.0]),
        np.zeros(1, np.int8), z.copy(), z.copy(), z.copy(), z.copy(), z.copy(), z.copy(),
        1000.0, 0.01, 0.0001, 4, 500.0, 300.0, 50.0, 100.0, 700.0, 100.0, 1.0, 0.5, 0.0,
        np.zeros(2), np.zeros(2), np.zeros(2, np.int32),
    )
