"""Idle is shared for the whole idle_share_grain_s cells (on the UTC grid) in which a request was on
the device (warehouse/attribution/occupancy.py), against a hand-computed example."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from warehouse.attribution.config import AttributionConfig, PowerModelConfig
from warehouse.attribution.intervals import DeviceIntervals
from warehouse.attribution.occupancy import merged_runs, occupied_s
from warehouse.attribution.split import attribute_device
from warehouse.attribution.timeline import ReplicaWork

DAY0 = 20_000 * 86400.0  # a UTC midnight
# A [2.3, 4.1), B [3.5, 3.8) inside A, C [10.9, 11.2): on the 1 s UTC grid A touches cells 2, 3, 4
# (3 s; B adds nothing) and C touches cells 10 and 11 (2 s): 5 s occupied. The exact union is
# 1.8 + 0.3 = 2.1 s. Measured from the first request (origin 2.3) instead of UTC, A would touch
# 2 cells and C 1: 3 s, so the grid's alignment matters.
SPANS = np.array([[2.3, 2.6, 4.1], [3.5, 3.6, 3.8], [10.9, 11.0, 11.2]])


def test_occupied_seconds_count_whole_utc_cells_against_a_hand_computed_example():
    s, e = SPANS[:, 0], SPANS[:, 2]
    a, b = merged_runs(s, e, 1.0)
    np.testing.assert_allclose(a, [2.0, 10.0])
    np.testing.assert_allclose(b, [5.0, 12.0])
    # intervals [0, 3), [3, 30): cell 2 in the first; cells 3, 4, 10, 11 in the second
    occ = occupied_s(s, e, np.array([0.0, 3.0]), np.array([3.0, 30.0]), 1.0)
    np.testing.assert_allclose(occ, [1.0, 4.0], rtol=1e-12)
    np.testing.assert_allclose(occupied_s(s, e, np.array([0.0]), np.array([30.0]), 0.0), [2.1], rtol=1e-12)
    # relative times with the grid offset land on the same UTC cells
    origin = 2.3
    occ_rel = occupied_s(s - origin, e - origin, np.array([-origin]), np.array([30.0 - origin]), 1.0,
                         grid_offset_s=origin)
    np.testing.assert_allclose(occ_rel, [5.0], rtol=1e-9)


def test_no_request_means_no_occupied_time():
    z = np.zeros(0)
    np.testing.assert_array_equal(occupied_s(z, z, np.array([0.0, 5.0]), np.array([5.0, 9.0]), 1.0), [0.0, 0.0])


def test_device_idle_is_shared_for_the_occupied_cells_and_the_rest_is_unused():
    # one 30 s interval, catalog idle 100 W (one interval: too few to learn idle) -> 3000 J idle,
    # 600 J active. Shared idle = 3000 x 5 / 30 = 500 J; unused 2500 J. The old rule (idle shared
    # for the seconds some request was prefilling or decoding, 2.1 s) gave 210 J.
    t = DAY0 + SPANS
    work = ReplicaWork.build(t[:, 0], t[:, 1], t[:, 2], np.array([50.0, 20.0, 10.0]))
    iv = DeviceIntervals(np.array([DAY0]), np.array([DAY0 + 30.0]), np.array([3600.0]), np.zeros(1, np.int8),
                         np.zeros(1, bool), 0)
    cfg = AttributionConfig(power_model=PowerModelConfig(enabled=False))
    res = attribute_device(iv, work, 100.0, cfg, (1.7, 1.0))
    assert res.idle_shared_j.sum() == pytest.approx(500.0, rel=1e-9)
    assert res.unused_j.sum() == pytest.approx(2500.0, rel=1e-9)
    assert res.req_idle_j.sum() == pytest.approx(500.0, rel=1e-9)
    assert res.req_active_j.sum() == pytest.approx(600.0, rel=1e-9)
    exact = attribute_device(iv, work, 100.0, dataclasses.replace(cfg, idle_share_grain_s=0.0), (1.7, 1.0))
    assert exact.idle_shared_j.sum() == pytest.approx(210.0, rel=1e-6)
