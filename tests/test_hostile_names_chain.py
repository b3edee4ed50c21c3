"""Issue 19: hostile names (generated) through spool writer -> loader -> attribution.

Hypothesis draws node, replica and model names with glob and SQL metacharacters, separators, HTML,
leading dots, path parts, very long and non-ASCII text. Whatever the names, the spool writer puts
each file inside its partition, the loader keeps every row under the real name (none quarantined),
and the attribution gives every request exactly the energy it gets with plain names: the devices'
energy lands on their requests. Names the identifier policy refuses (control characters, invalid
UTF-8) are quarantined with field and reason instead. The site half of the chain (the same names
only ever as text in the DOM) is tests/test_site_hostile_names.py.
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from collectors.names import name_problem
from tests.ingest_builders import put, q, replicas, requests, samples
from warehouse.attribution.run import run_attribution_days
from warehouse.ingest.load import connect, load_spool

HOSTILE = ["h*", "[a]?", "../../outside", ".hidden", "a,b;c|d", "x'); drop table raw.requests; --",
           "<img src=x onerror=alert(1)>", "</script><script>alert(1)</script>", "日本語-ノード", "n" * 200,
           "node=evil/date=1970-01-01", "%s%n{0}", "C:\\x\\y", "a b\tc"]
names = st.one_of(st.sampled_from(HOSTILE), st.text(min_size=1, max_size=80))


def _run(base: Path, node: str, replica: str, model: str):
    spool = base / "spool"
    devices = [f"{node}/0", f"{node}/1"]
    for i, dev in enumerate(devices):
        put(spool, "device_samples", f"d{i}", samples(device=dev, node=node, n=400), node=node)
    put(spool, "replicas", "rep", replicas(replica=replica, node=node, devices=devices, model=model), node=node)
    put(spool, "requests", "r", requests(n=60, node=node, replica=replica, model=model), node=node)
    for f in spool.rglob("*.parquet"):  # nothing escaped its partition
        assert f.resolve().is_relative_to(spool.resolve())
    con = connect(base / "w.duckdb")
    report = load_spool(con, spool)
    run_attribution_days(con)
    return con, report


def _energies(con):
    return [round(e, 6) for (e,) in q(con, """select sum(energy_j) from attribution.request_energy
                                              group by request_id order by request_id""")]


PLAIN: dict = {}


def _plain() -> list[float]:
    if "e" not in PLAIN:
        base = Path(tempfile.mkdtemp(prefix="tw-plain-"))
        try:
            con, _ = _run(base, "n1", "rep1", "llama-8b")
            PLAIN["e"] = _energies(con)
            PLAIN["devices"] = q(con, "select sum(measured_energy_j), sum(attributed_active_j + shared_idle_j) "
                                      "from attribution.device_day")[0]
            con.close()
        finally:
            shutil.rmtree(base, ignore_errors=True)
    return PLAIN["e"]


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(node=names, replica=names, model=names)
@example(node="mi,300", replica="rep'1", model="<b>m</b>")
@example(node="bad\x00node", replica="r", model="m")
def test_generated_hostile_names_keep_every_joule(node, replica, model):
    plain = _plain()
    base = Path(tempfile.mkdtemp(prefix="tw-hostile-"))
    try:
        con, report = _run(base, node, replica, model)
        bad = [n for n in (node, replica, model) if name_problem(n)]
        if bad:  # refused by the identifier policy: quarantined with a reason, not loaded half-way
            reasons = q(con, "select distinct field, reason from raw.quarantine")
            assert reasons and all("invalid name" in r or "unknown replica" in r for _, r in reasons), reasons
            return
        assert sum(report.rows_quarantined.values()) == 0, q(con, "select * from raw.quarantine limit 5")
        assert q(con, "select distinct node from raw.device_samples") == [(node,)]
        assert q(con, "select replica_id, model, device_ids from raw.replicas") == [
            (replica, model, [f"{node}/0", f"{node}/1"])]
        assert _energies(con) == plain  # every request's joules, exactly as with plain names
        devices = q(con, "select sum(measured_energy_j), sum(attributed_active_j + shared_idle_j) "
                         "from attribution.device_day")[0]
        assert [round(x, 6) for x in devices] == [round(x, 6) for x in PLAIN["devices"]]
        con.close()
    finally:
        shutil.rmtree(base, ignore_errors=True)
