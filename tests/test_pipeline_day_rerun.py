"""A one-day rerun gives the marts of a full rebuild (issue 16).

The tiny home is built whole (dbt build --full-refresh); a copy then has every mart's rows of its
first day damaged and that one day re-run through the partitioned pipeline (dbt's day window in
run.dbt_window, no --vars): every mart must come back equal to the full build, row for row, the
days outside the window untouched, the window table empty again, and dbt must not re-parse the
project for the windowed call.
"""
from __future__ import annotations

import json
import shutil

import duckdb

from warehouse.ingest.checksum import table_checksums


def _marts(con) -> list[str]:
    return [f"marts.{t}" for (t,) in con.execute(
        "select table_name from information_schema.tables where table_schema = 'marts' and table_type = 'BASE TABLE' "
        "order by 1").fetchall()]


# Columns that hold last-bit noise rather than figures, whichever way a table was built: residuals
# that are a difference of two equal sums (about 1e-12 USD on a bill of 1e3, 1e-8 J on 1e9 J) are
# compared row by row against the row's scale (table: key columns, {column: scale column}), and a
# Python asset's JSON text, which prints its floats with every digit, is left out.
RESIDUALS = {"marts.fct_cost_reconciliation": (["grain", "period_start"],
                                               {"difference_usd": "fleet_bill_usd", "difference_rel": "1.0"}),
             "marts.fct_footprint_node_daily": (["date", "node"], {"unshared_j": "total_j"})}
NOISE = {"marts.fct_fleet_scale_projection": ["assumptions"],
         **{t: list(cols) for t, (_, cols) in RESIDUALS.items()}}


def _checksums(con, marts: list[str]) -> dict:
    """Every mart's checksum, the noise columns left out (through temp views of the rest)."""
    names = []
    for t in marts:
        if t in NOISE:
            view = "noise_free_" + t.split(".")[1]
            con.execute(f"create or replace temp view {view} as select * exclude ({', '.join(NOISE[t])}) from {t}")
            names.append(view)
        else:
            names.append(t)
    return dict(zip(marts, table_checksums(con, names).values()))


def _day_column(con, table: str) -> str | None:
    cols = {c for (c,) in con.execute(
        "select column_name from information_schema.columns where table_schema = 'marts' and table_name = ?",
        [table.split(".")[1]]).fetchall()}
    return "date" if "date" in cols else "cast(hour_ts as date)" if "hour_ts" in cols else None


def test_one_day_rerun_gives_the_marts_of_a_full_build(tiny_home, tmp_path):
    from pipelines.cli import run_pipeline

    home = tmp_path / "home"
    shutil.copytree(tiny_home, home, ignore=shutil.ignore_patterns("dagster", "site", "dbt"))
    con = duckdb.connect(str(home / "warehouse.duckdb"))
    marts = _marts(con)
    assert {"marts.fct_request_energy", "marts.fct_footprint_daily", "marts.fct_request_footprint",
            "marts.fct_token_economics", "marts.fct_device_energy_daily"} <= set(marts)
    full = _checksums(con, marts)
    # the first day: its window is that day alone (the last day's takes in the day before, whose
    # requests ran past midnight), so the marts' other day must come through the rerun untouched
    first = str(con.execute("select min(date) from marts.fct_request_energy").fetchone()[0])
    assert con.execute("select count(distinct date) from marts.fct_request_energy").fetchone()[0] == 2
    # damage that day in every day-keyed mart: only a rebuild of that day can repair it
    damaged = []
    for t in marts:
        day = _day_column(con, t)
        if day is None:  # no day column: rebuilt whole on every run
            continue
        num = [c for (c, ty) in con.execute(
            "select column_name, data_type from information_schema.columns where table_schema = 'marts' "
            "and table_name = ? and data_type = 'DOUBLE'", [t.split(".")[1]]).fetchall()]
        if num:
            n = con.execute(f"update {t} set {num[0]} = {num[0]} + 1 where {day} = cast(? as date)", [first]).fetchone()[0]
            damaged += [t] if n else []
    assert "marts.fct_request_energy" in damaged and "marts.fct_footprint_daily" in damaged
    assert _checksums(con, damaged) != {t: full[t] for t in damaged}
    con.close()

    result = run_pipeline(home, days=(first, first))
    assert result.success

    con = duckdb.connect(str(home / "warehouse.duckdb"))
    try:
        after = _checksums(con, marts)
        assert con.execute("select count(*) from run.dbt_window").fetchone()[0] == 0
    finally:
        con.close()
    assert [t for t in marts if after[t] != full[t]] == []
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        con.execute(f"attach '{tiny_home / 'warehouse.duckdb'}' as full_build (read_only)")
        for t, (key, cols) in RESIDUALS.items():
            on = " and ".join(f"a.{k} = b.{k}" for k in key)
            worst = con.execute(f"""select max(greatest({', '.join(
                f'abs(a.{c} - b.{c}) / greatest(abs(a.{scale}), 1.0)' if scale[0].isalpha() else f'abs(a.{c} - b.{c})'
                for c, scale in cols.items())}, 0.0))
                from {t} as a join full_build.{t} as b on {on}""").fetchone()[0]
            assert worst is not None and worst < 1e-9, (t, worst)
    finally:
        con.close()

    # the windowed call ran incrementally (no --full-refresh) and parsed nothing again
    rr = json.loads((home / "dbt" / "target" / "run_results.json").read_text())
    assert not rr["args"].get("full_refresh")
    log = (home / "dbt" / "target" / "dbt.log").read_text()
    build = log[log.rindex("Running with dbt="):]
    assert "Unable to do partial parsing" not in build
