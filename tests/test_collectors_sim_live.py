"""The live simulated device source used by ``--backend sim``."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [p for p in (str(ROOT / "tests"), str(ROOT)) if p not in sys.path]

from collectors.base import rows_to_table  # noqa: E402
from collectors.schema import DEVICE_SAMPLES  # noqa: E402
from collectors.sim.live import SIM_CHIPS, SimLiveBackend  # noqa: E402

T0 = 1_750_000_000.0


def test_energy_counter_is_the_exact_integral_of_power():
    dev = SimLiveBackend(node="n", devices=1, seed=3).devices[0]
    t1, t2, steps = T0, T0 + 60.0, 60_000
    h = (t2 - t1) / steps
    simpson = dev.power_w(t1) + dev.power_w(t2)
    simpson += sum((4 if i % 2 else 2) * dev.power_w(t1 + i * h) for i in range(1, steps))
    simpson *= h / 3
    assert dev.energy_j(t2) - dev.energy_j(t1) == pytest.approx(simpson, rel=1e-9, abs=1e-3)
    # and not a constant-power shortcut
    assert dev.energy_j(t2) - dev.energy_j(t1) != pytest.approx(dev.power_w(t1) * 60.0, rel=1e-3)


@pytest.mark.parametrize("chip", sorted(SIM_CHIPS))
def test_power_stays_between_idle_and_peak_and_rows_fit_the_schema(chip):
    now = [T0]
    b = SimLiveBackend(node="n", devices=3, chip=chip, clock=lambda: now[0])
    spec = SIM_CHIPS[chip]
    rows = []
    for i in range(400):
        now[0] = T0 + i * 0.75
        rows += b.sample()
    powers = [r["power_w"] for r in rows]
    assert spec.idle_w <= min(powers) < max(powers) <= spec.peak_w
    assert max(powers) - min(powers) > 0.3 * (spec.peak_w - spec.idle_w)  # it actually moves
    assert {r["chip"] for r in rows} == {chip} and {r["vendor"] for r in rows} == {spec.vendor}
    assert rows_to_table(rows).schema.equals(DEVICE_SAMPLES)
    per_device = [[r["energy_counter_j"] for r in rows if r["device_index"] == d] for d in range(3)]
    assert all(a < b for counters in per_device for a, b in zip(counters, counters[1:]))  # monotonic


def test_same_seed_and_node_give_the_same_counter_across_restarts():
    a = SimLiveBackend(node="n", devices=2, seed=1, clock=lambda: T0 + 5)
    b = SimLiveBackend(node="n", devices=2, seed=1, clock=lambda: T0 + 5)
    c = SimLiveBackend(node="other", devices=2, seed=1, clock=lambda: T0 + 5)
    assert [r["energy_counter_j"] for r in a.sample()] == [r["energy_counter_j"] for r in b.sample()]
    assert [r["power_w"] for r in a.sample()] != [r["power_w"] for r in c.sample()]
