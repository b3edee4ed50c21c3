"""`tokenwatt evaluate` on a home whose path holds SQL and glob metacharacters (issue 19, item 13)."""
from __future__ import annotations

from collectors.sim.simulate import simulate
from warehouse.attribution.evaluate import evaluate_dir


def test_evaluate_scores_a_home_whose_path_has_a_quote_and_glob_characters(tmp_path):
    home = tmp_path / "it's [a]*{b} home"
    simulate("tiny", home, "2026-10-01", 1, 30.0, 3, progress=False)
    rep = evaluate_dir(home)
    assert rep["tokenwatt"]["requests"] > 100
    assert abs(rep["fleet_energy_error_pct"]) < 1.0
    assert rep["conservation_residual_rel"] < 1e-6
