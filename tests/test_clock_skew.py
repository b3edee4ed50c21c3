"""Clock skew between device samples and requests: the estimator on synthetic arrays with a known
lag, and the chaos preset's skewed node (asic-0, samples 2.5 s ahead) detected, stored, corrected
before attribution and reported in the data-quality mart, with the other nodes left alone."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import duckdb
import numpy as np
import pytest
import yaml

from warehouse.attribution.config import AttributionConfig
from warehouse.attribution.intervals import device_intervals
from warehouse.attribution.config import SkewConfig
from warehouse.attribution.clock_skew import estimate_day, should_correct
from warehouse.attribution.skew_grids import cell_average_of_boxes

DAY = 20_000  # a UTC day number (2024-10-04)
D0 = DAY * 86400.0


def synthetic_node(skew_s: float, interval_s: float = 5.0, seed: int = 3, devices: int = 2):
    """Requests of one replica on the request clock, and its devices' samples stamped ``skew_s``
    late: power = idle + prefill and decode power of what is running, counter = its exact integral."""
    rng = np.random.default_rng(seed)
    n = rng.poisson(0.4 * 86400)
    s = np.sort(D0 + rng.uniform(-60, 86400, n))
    f = s + rng.uniform(0.1, 0.8, n)
    e = f + rng.exponential(6.0, n)
    comp = np.full(n, 64.0)
    tick = 0.05
    grid = D0 - 120 + np.arange(int((86400 + 240) / tick)) * tick
    pre = np.zeros(grid.shape[0] + 1)
    dec = np.zeros(grid.shape[0] + 1)
    for arr, a, b in ((pre, s, f), (dec, f, e)):
        np.add.at(arr, np.searchsorted(grid, a), 1)
        np.add.at(arr, np.searchsorted(grid, b), -1)
    power = 80.0 + 120.0 * np.cumsum(pre)[:-1] + 150.0 * np.minimum(np.cumsum(dec)[:-1], 1)
    energy = np.concatenate([[0.0], np.cumsum(power * tick)])
    ivs = []
    for d in range(devices):
        t_true = D0 + rng.uniform(0, interval_s) + np.arange(int(86400 / interval_s)) * interval_s
        t_true = t_true[(t_true - skew_s >= D0 - 100) & (t_true + skew_s < D0 + 86400)]
        counter = np.interp(t_true, np.concatenate([[grid[0]], grid + tick]), energy)
        inst = power[np.clip(np.searchsorted(grid, t_true) - 1, 0, power.shape[0] - 1)]
        ivs.append(device_intervals(t_true + skew_s, inst, counter + 1e6 * d, 1000.0, None, AttributionConfig()))
    return s, f, e, comp, ivs


def test_cell_averages_of_boxes_are_exact():
    # two boxes: [0.25, 1.75) rate 2 and [1.0, 3.0) rate 1, on cells of 0.5 s from 0
    out = cell_average_of_boxes(np.array([0.25, 1.0]), np.array([1.75, 3.0]), np.array([2.0, 1.0]), 0.0, 6, 0.5)
    assert np.allclose(out, [1.0, 2.0, 3.0, 2.0, 1.0, 1.0])


@pytest.mark.parametrize("skew", [3.2, -1.7, 0.0])
def test_estimator_recovers_a_known_lag(skew):
    s, f, e, comp, ivs = synthetic_node(skew)
    cfg = SkewConfig()
    est = estimate_day([(s, f, e, comp, ivs)], DAY, cfg)
    assert est is not None and est.devices == 2
    assert abs(est.skew_s - skew) < 0.25
    assert est.correlation > 0.5
    if skew:
        assert est.margin > cfg.min_margin and should_correct(est, cfg)
    else:
        assert abs(est.margin) < 1e-3 and not should_correct(est, cfg)
    assert not should_correct(est, dataclasses.replace(cfg, correct=False))


def test_estimator_finds_nothing_to_correct_without_requests_or_signal():
    s, f, e, comp, ivs = synthetic_node(0.0, devices=1)
    cfg = SkewConfig()
    assert estimate_day([(s[:0], f[:0], e[:0], comp[:0], ivs)], DAY, cfg) is None
    # power that does not follow the requests at all: low correlation, not corrected
    rng = np.random.default_rng(5)
    t = D0 + np.arange(17280) * 5.0
    p = 100 + 50 * rng.standard_normal(t.shape[0])
    iv = device_intervals(t, p, np.full(t.shape[0], np.nan), 1000.0, None, AttributionConfig())
    est = estimate_day([(s, f, e, comp, [iv])], DAY, cfg)
    assert est.correlation < cfg.min_correlation and not should_correct(est, cfg)


# ------------------------------------------------------------------ the chaos preset, end to end
def _median_ape_by_node(con, home: Path) -> dict:
    return dict(con.execute(f"""
        with a as (select request_id, sum(energy_j) as e from attribution.request_energy group by 1)
        select t.node, median(abs(a.e - t.true_energy_j) / t.true_energy_j)
        from a join read_parquet('{home}/truth/requests/**/*.parquet', hive_partitioning=true) t using (request_id)
        group by 1""").fetchall())


@pytest.fixture(scope="module")
def chaos_pair(tmp_path_factory):
    """The chaos preset for 1 day at 10 s, and the same fleet without its clock skew, attributed."""
    from collectors.sim.fleet import resolve_fleet_path
    from collectors.sim.simulate import simulate
    from warehouse.attribution.run import run_attribution_days
    from warehouse.ingest.load import connect, load_spool

    out = {}
    fleet = yaml.safe_load(Path(resolve_fleet_path("chaos")).read_text())
    assert fleet["faults"]["clock_skew"] == {"node": "asic-0", "skew_s": 2.5}
    fleet["faults"]["clock_skew"]["skew_s"] = 0.0
    noskew = tmp_path_factory.mktemp("noskew_fleet") / "chaos_noskew.yaml"
    noskew.write_text(yaml.safe_dump(fleet))
    for name, f in (("skew", "chaos"), ("noskew", str(noskew))):
        home = tmp_path_factory.mktemp(name)
        simulate(f, home, "2026-10-01", 1, 10.0, 21, progress=False)
        con = connect(home / "warehouse.duckdb")
        load_spool(con, home / "spool")
        run_attribution_days(con)
        out[name] = (home, con)
    yield out
    for _, con in out.values():
        con.close()


def test_chaos_skewed_node_is_detected_and_corrected(chaos_pair):
    home, con = chaos_pair["skew"]
    rows = {r[0]: r[1:] for r in con.execute(
        "select node, skew_s, correlation, applied from attribution.clock_skew where date = '2026-10-01'").fetchall()}
    assert set(rows) == {"h100-0", "mi300x-0", "asic-0"}
    skew, corr, applied = rows["asic-0"]
    assert abs(skew - 2.5) <= 0.5 and applied  # positive: samples stamped after the requests
    for node in ("h100-0", "mi300x-0"):
        assert abs(rows[node][0]) < 0.5 and not rows[node][2]
    # conservation still holds on every device-day, the corrected node included
    worst = con.execute("""
        select max(greatest(abs(attributed_active_j + shared_idle_j + unused_j - measured_energy_j),
                            abs(attributed_active_j - request_side_active_j),
                            abs(shared_idle_j - request_side_idle_j)) / measured_energy_j)
        from attribution.device_day""").fetchone()[0]
    assert worst < 1e-6


def test_chaos_correction_brings_the_skewed_node_close_to_the_unskewed_run(chaos_pair, tmp_path):
    import shutil

    from warehouse.attribution.run import run_attribution_days

    home, con = chaos_pair["skew"]
    nhome, ncon = chaos_pair["noskew"]
    corrected = _median_ape_by_node(con, home)
    unskewed = _median_ape_by_node(ncon, nhome)
    assert not any(r[0] for r in ncon.execute("select applied from attribution.clock_skew").fetchall())
    # the same skewed warehouse attributed with correction switched off (`correct: false`)
    con.execute("checkpoint")
    shutil.copy(home / "warehouse.duckdb", tmp_path / "w.duckdb")
    c2 = duckdb.connect(str(tmp_path / "w.duckdb"))
    try:
        run_attribution_days(c2, skew_cfg=dataclasses.replace(SkewConfig.load(), correct=False))
        assert c2.execute("select bool_or(applied) from attribution.clock_skew").fetchone()[0] is False
        uncorrected = _median_ape_by_node(c2, home)
    finally:
        c2.close()
    # at 10 s sampling (1 day, seed 21): 13.25 % uncorrected, 12.82 % corrected, 12.84 % without skew
    assert corrected["asic-0"] < uncorrected["asic-0"] - 0.002
    assert abs(corrected["asic-0"] - unskewed["asic-0"]) < 0.25 * (uncorrected["asic-0"] - unskewed["asic-0"])
    for node in ("h100-0", "mi300x-0"):  # nodes left alone attribute exactly as before
        assert corrected[node] == pytest.approx(uncorrected[node], rel=1e-12)
