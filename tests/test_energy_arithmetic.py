"""Focused tests of the energy arithmetic: counter deltas, resets, wraps, splits, conservation."""
from __future__ import annotations

import numpy as np
import pytest

from warehouse.attribution.config import AttributionConfig
from warehouse.attribution.intervals import device_intervals
from warehouse.attribution.split import attribute_device
from warehouse.attribution.timeline import ReplicaWork

CFG = AttributionConfig()
DAY = 86400.0


def test_counter_deltas_give_interval_energy_and_duplicates_and_disorder_are_ignored():
    ts = np.array([10.0, 0.0, 5.0, 5.0, 15.0])
    counter = np.array([3000.0, 1000.0, 2000.0, 2000.0, 4500.0])
    power = np.full(5, 200.0)
    iv = device_intervals(ts, power, counter, 700.0, None, CFG)
    assert iv.start.tolist() == [0.0, 5.0, 10.0]
    assert iv.energy_j.tolist() == [1000.0, 1000.0, 1500.0]
    assert iv.source.tolist() == [0, 0, 0]


def test_counter_reset_falls_back_to_integrated_power_and_is_counted():
    ts = np.array([0.0, 10.0, 20.0])
    counter = np.array([5e6, 5e6 + 2000.0, 300.0])  # driver reload between the 2nd and 3rd sample
    power = np.array([200.0, 200.0, 300.0])
    iv = device_intervals(ts, power, counter, 700.0, None, CFG)
    assert iv.resets == 1
    assert iv.source.tolist() == [0, 1]
    assert iv.energy_j[1] == pytest.approx(0.5 * (200 + 300) * 10)


def test_counter_wrap_is_unwrapped_with_the_chip_counter_width():
    wrap = 4294967.296
    ts = np.array([0.0, 10.0])
    counter = np.array([wrap - 1000.0, 2000.0])
    iv = device_intervals(ts, np.array([300.0, 300.0]), counter, 450.0, wrap, CFG)
    assert iv.energy_j[0] == pytest.approx(3000.0)
    assert iv.source[0] == 0


def test_missing_counter_integrates_power():
    ts = np.array([0.0, 1.0, 2.0])
    iv = device_intervals(ts, np.array([100.0, 300.0, 300.0]), np.full(3, np.nan), 700.0, None, CFG)
    assert iv.energy_j.tolist() == [200.0, 300.0]
    assert iv.source.tolist() == [1, 1]


def test_interval_crossing_midnight_is_split_pro_rata():
    ts = np.array([DAY - 2.0, DAY + 2.0])
    iv = device_intervals(ts, np.array([100.0, 100.0]), np.array([0.0, 800.0]), 700.0, None, CFG)
    assert iv.start.tolist() == [DAY - 2.0, DAY]
    assert iv.energy_j.tolist() == [400.0, 400.0]


def _work(reqs):
    a = np.array(reqs, dtype=float)
    return ReplicaWork.build(a[:, 0], a[:, 1], a[:, 2], a[:, 4])


def test_two_identical_decoding_requests_split_active_energy_equally_and_idle_is_shared():
    # device at 100 W idle; 10 s intervals of 3000 J; two requests decoding the whole time
    ts = np.arange(0.0, 31.0, 10.0)
    counter = ts * 300.0
    iv = device_intervals(ts, np.full(ts.shape, 300.0), counter, 700.0, None, CFG)
    work = _work([[0.0, 0.001, 30.0, 10, 100], [0.0, 0.001, 30.0, 10, 100]])
    res = attribute_device(iv, work, 100.0, CFG, (1.7, 1.0))
    assert res.req_active_j[0] == pytest.approx(res.req_active_j[1], rel=1e-6)
    assert res.req_active_j.sum() == pytest.approx(200.0 * 30, rel=1e-9)
    assert res.req_idle_j.sum() == pytest.approx(100.0 * 30, rel=1e-9)
    assert res.unused_j.sum() == 0.0


def test_request_free_interval_is_unused_capacity_and_everything_adds_up():
    ts = np.arange(0.0, 41.0, 10.0)
    power = np.array([150.0, 150.0, 400.0, 400.0, 150.0])
    counter = np.concatenate([[0.0], np.cumsum(0.5 * (power[:-1] + power[1:]) * 10)])
    iv = device_intervals(ts, power, counter, 700.0, None, CFG)
    work = _work([[20.0, 21.0, 29.0, 500, 50]])
    res = attribute_device(iv, work, 150.0, CFG, (1.7, 1.0))
    measured = res.measured_j.sum()
    parts = res.active_attr_j.sum() + res.idle_shared_j.sum() + res.unused_j.sum()
    assert parts == pytest.approx(measured, rel=1e-12)
    assert res.unused_j[0] == pytest.approx(1500.0)  # nothing ran in [0, 10)
    assert (res.req_active_j + res.req_idle_j).sum() == pytest.approx(
        res.active_attr_j.sum() + res.idle_shared_j.sum(), rel=1e-9)


def test_prefill_weight_gives_a_prefilling_request_more_per_second_than_a_decoding_one():
    ts = np.array([0.0, 10.0])
    iv = device_intervals(ts, np.array([500.0, 500.0]), np.array([0.0, 5000.0]), 700.0, None, CFG)
    # A prefills for 4 s then nothing; B decodes for 10 s. Prefill second weighs 2x decode second.
    work = _work([[0.0, 4.0, 4.0, 1000, 1], [0.0, 0.001, 10.0, 5, 200]])
    res = attribute_device(iv, work, 100.0, CFG, (2.0, 1.0))
    # device time: 4 s prefill, 6 s decode (decode concurrent with prefill does not double count)
    assert res.req_active_j[0] / res.req_active_j.sum() == pytest.approx(8 / 14, rel=1e-3)


def test_learned_idle_replaces_the_catalog_value_when_quiet_intervals_exist():
    ts = np.arange(0.0, 301.0, 1.0)
    power = np.full(ts.shape, 123.0)
    counter = ts * 123.0
    iv = device_intervals(ts, power, counter, 700.0, None, CFG)
    res = attribute_device(iv, _work([[250.0, 251.0, 260.0, 10, 10]]), 75.0, CFG)
    assert res.idle_source == "learned"
    assert res.idle_w == pytest.approx(123.0)
