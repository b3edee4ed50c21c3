"""`tokenwatt demo`, the README's first command, as a user runs it: a subprocess on a small fleet.
It simulates, runs every asset, scores the attribution against the simulator's ground truth and
builds the site with those scores."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb


def test_demo_end_to_end_with_attribution_quality(tmp_path):
    home = tmp_path / "home"
    p = subprocess.run([sys.executable, "-m", "pipelines.cli", "demo", "--fleet", "tiny", "--days", "2",
                        "--home", str(home)], capture_output=True, text=True, timeout=900,
                       cwd=Path(__file__).resolve().parents[1])
    assert p.returncode == 0, p.stderr[-4000:]
    out = p.stdout
    assert "tokenwatt demo: 2 days of fleet 'tiny'" in out
    assert "worst device-day conservation residual" in out
    assert "median request, full boundary:" in out and "energy split accelerator / host / reserve / facility" in out
    assert "attribution vs ground truth" in out and "naive_even_split" in out

    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        q = con.execute("""select method, interval_s, median_ape_pct from attribution.quality
                           order by interval_s, method""").fetchall()
        chips = {r[0] for r in con.execute("select distinct chip from marts.fct_request_energy").fetchall()}
    finally:
        con.close()
    from warehouse.attribution.evaluate import BASELINES, METHODS

    intervals = (1.0, 5.0, 15.0, 30.0, 60.0)
    assert {(m, s) for m, s, _ in q} == {(m, s) for m in METHODS for s in intervals}
    ape = {(m, s): v for m, s, v in q}
    assert all(ape[("tokenwatt", s)] < ape[("naive_even_split", s)] for s in intervals)
    # at dcgm-exporter's default 30 s, better than the best of what people do by hand
    assert ape[("tokenwatt", 30.0)] < min(ape[(f"baseline_{b}", 30.0)] for b in BASELINES)
    assert chips
    # the site was rebuilt after the scoring: the energy page shows it instead of "no data yet"
    energy = (home / "site" / "energy.html").read_text()
    assert "attribution.quality</code> does not exist" not in energy
    assert "naive_even_split" in energy or "even split" in energy.lower()
