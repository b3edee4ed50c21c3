"""The attribution's own prefill / decode split (issue 14, part 3): each request's active energy
in its prefill phase (input tokens) and its decode phase (output tokens), and its device-seconds
in each, as attribution.request_energy stores them for the money models."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from warehouse.attribution.config import AttributionConfig
from warehouse.attribution.intervals import device_intervals
from warehouse.attribution.split import attribute_device
from warehouse.attribution.tables import REQUEST_DAY_SCHEMA, request_day_table
from warehouse.attribution.timeline import ReplicaWork

CFG = AttributionConfig()


def _device(seconds=30.0, watts=300.0):
    ts = np.arange(0.0, seconds + 1.0, 5.0)
    return device_intervals(ts, np.full(ts.shape, watts), ts * watts, 700.0, None, CFG)


def test_phase_device_seconds_share_the_device_as_the_energy_does():
    # A prefills 0-4 alone, decodes 4-10 alone, pauses while B prefills 10-12, then both decode to 30
    work = ReplicaWork.build(np.array([0.0, 10.0]), np.array([4.0, 12.0]), np.array([30.0, 30.0]),
                             np.array([50.0, 50.0]))
    res = attribute_device(_device(), work, 100.0, CFG, (1.7, 1.0))
    np.testing.assert_allclose(res.req_phase_s, [[4.0, 6.0 + 18.0 / 2], [2.0, 18.0 / 2]], rtol=1e-12)
    assert res.req_phase_s.sum() == pytest.approx(30.0, rel=1e-12)  # every busy device-second, once
    p, a = res.req_prefill_j, res.req_active_j
    assert np.all(p > 0) and np.all(p < a)
    assert a.sum() == pytest.approx(200.0 * 30, rel=1e-9)  # 300 W - 100 W idle, 30 s
    # B's prefill took 2 of the 30 busy seconds and its decode 9: its prefill energy is well under
    # its decode energy; A decoded longer than B, so more decode energy
    assert p[1] < a[1] - p[1] and a[0] - p[0] > a[1] - p[1]


def test_a_lone_prefill_is_all_prefill():
    work = ReplicaWork.build(np.array([5.0]), np.array([20.0]), np.array([20.0]), np.array([1.0]))
    res = attribute_device(_device(), work, 100.0, CFG, (1.7, 1.0))
    assert res.req_prefill_j[0] == res.req_active_j[0] > 0
    np.testing.assert_allclose(res.req_phase_s, [[15.0, 0.0]], atol=1e-12)


def test_written_phases_add_up_to_the_active_energy_exactly():
    rng = np.random.default_rng(2)
    active = rng.uniform(0, 1e4, 1000)
    prefill = active * rng.uniform(0, 1, 1000)
    tbl = request_day_table(pa.array([f"r{i}" for i in range(1000)]), 20000, active, rng.uniform(0, 50, 1000),
                            prefill, rng.uniform(0, 3, (1000, 2)))
    assert tbl.schema == REQUEST_DAY_SCHEMA
    d = tbl.to_pydict()
    assert all(p + q == a for p, q, a in zip(d["prefill_energy_j"], d["decode_energy_j"], d["active_energy_j"]))
    np.testing.assert_allclose(d["active_energy_j"], active, rtol=1e-15)
    assert all(e == a + i for e, a, i in zip(d["energy_j"], d["active_energy_j"], d["idle_share_j"]))
