"""Host energy into the warehouse: the host_samples rules (good rows load, bad ones go to quarantine
naming file, row and field, a rerun adds nothing) and the simulator's host power assumption."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from collectors.schema import HOST_SAMPLES
from collectors.spool import write_partition
from warehouse.ingest.ddl import connect
from warehouse.ingest.load import load_spool

from tests.ingest_builders import T0, ts


def host_rows(n=6, node="n1", domain="package-0", **over) -> pa.Table:
    cols = {
        "ts": ts(T0 + 10 + 10.0 * np.arange(n)), "node": [node] * n, "domain": [domain] * n,
        "energy_counter_j": 100.0 + 500.0 * np.arange(n), "counter_wrap_j": np.full(n, 262143.3),
        "energy_delta_j": np.full(n, 500.0), "power_w": np.full(n, 50.0), "source": ["rapl"] * n,
    }
    cols.update(over)
    return pa.table(cols, schema=HOST_SAMPLES)


def _read(root):
    return pa.concat_tables([pq.read_table(p) for p in sorted(root.rglob("*.parquet"))]).to_pandas()


def test_good_host_rows_load_and_bad_ones_are_quarantined_by_field(tmp_path):
    spool = tmp_path / "spool"
    good = host_rows()
    delta = np.full(6, 500.0)
    delta[2] = -1.0
    delta[4] = np.nan
    bad = host_rows(node="n1", domain="dram-0", energy_delta_j=delta)
    write_partition(spool, "host_samples", "2026-10-01", "n1", good, name="good")
    path = write_partition(spool, "host_samples", "2026-10-01", "n1", bad, name="bad")
    write_partition(spool, "host_samples", "2026-10-01", "n2",
                    host_rows(node="../n2", power_w=np.full(6, 1e9)), name="hostile")
    con = connect(tmp_path / "w.duckdb")
    load_spool(con, spool)
    assert con.execute("select count(*), sum(energy_delta_j) from raw.host_samples").fetchone() == (10, 5000.0)
    q = con.execute("""select file, row, field, reason from raw.quarantine where kind = 'host_samples'
                       order by file, row""").fetchall()
    rel = path.relative_to(spool).as_posix()
    assert [(f, r, fld) for f, r, fld, _ in q if f == rel] == [(rel, 2, "energy_delta_j"), (rel, 4, "energy_delta_j")]
    hostile = [x for x in q if "hostile" in x[0]]
    assert len(hostile) == 6 and {x[2] for x in hostile} == {"power_w"}  # the first failed rule names the field
    load_spool(con, spool)  # a rerun changes nothing
    assert con.execute("select count(*) from raw.host_samples").fetchone()[0] == 10
    assert con.execute("select count(*) from raw.quarantine").fetchone()[0] == len(q)


def test_node_names_are_data_and_a_control_character_is_refused(tmp_path):
    spool = tmp_path / "spool"
    write_partition(spool, "host_samples", "2026-10-01", "x", host_rows(node="n1*"), name="glob")
    write_partition(spool, "host_samples", "2026-10-01", "y", host_rows(node="n\x07"), name="bell")
    con = connect(tmp_path / "w.duckdb")
    load_spool(con, spool)
    assert con.execute("select distinct node from raw.host_samples").fetchall() == [("n1*",)]
    fields = con.execute("select distinct field, value from raw.quarantine").fetchall()
    assert fields == [("node", "n\x07")], fields


def test_simulator_host_energy_is_the_stated_share_of_accelerator_energy(tmp_path):
    from collectors.sim.host import load_host_power
    from collectors.sim.simulate import simulate

    simulate("tiny", tmp_path, "2026-10-01", 1, 10.0, 5, progress=False)
    hp = load_host_power()
    assert "assumption" in hp.source and "2508.15734" in hp.source
    host = _read(tmp_path / "spool" / "host_samples")
    truth = _read(tmp_path / "truth" / "devices")
    by_node = host.groupby("node")["energy_delta_j"].sum()
    acc = truth.groupby("node")["true_energy_j"].sum()
    assert sorted(by_node.index) == sorted(acc.index)
    for node in acc.index:
        assert by_node[node] == pytest.approx(acc[node] * hp.host_to_accelerator_ratio, rel=1e-9)
    assert set(host["domain"]) == {"package-0", "dram-0"} and set(host["source"]) == {"sim"}
    # counters are cumulative modulo the RAPL range and agree with the deltas
    one = host[(host.node == acc.index[0]) & (host.domain == "package-0")].sort_values("ts")
    assert np.allclose(np.diff(one.energy_counter_j.to_numpy()) % one.counter_wrap_j.iloc[0],
                       one.energy_delta_j.to_numpy()[1:], rtol=1e-9, atol=1e-6)
