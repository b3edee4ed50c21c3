"""A host reading is stamped at the end of the interval it measured: one at 00:00:00 closes the day
before. Its row's day, the dirty marks a load leaves and a new file's pending days follow that
(as stg_raw__host_samples does), so a day's last reading never leaves the next day pending."""
from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import pyarrow as pa

sys.path[:0] = [p for p in (str(Path(__file__).resolve().parents[1]),) if p not in sys.path]

from collectors.schema import HOST_SAMPLES  # noqa: E402
from tests.ingest_builders import T0, put, q, ts  # noqa: E402
from warehouse.ingest.days import dirty_dates, pending_dates  # noqa: E402
from warehouse.ingest.load import connect, load_spool  # noqa: E402


def _host(times: list[float]) -> pa.Table:
    n = len(times)
    return pa.table({"ts": ts(times), "node": ["n1"] * n, "domain": ["package-0"] * n,
                     "energy_counter_j": [float(i) for i in range(n)], "counter_wrap_j": [None] * n,
                     "energy_delta_j": [15.0] * n, "power_w": [1.0] * n, "source": ["sim"] * n}, schema=HOST_SAMPLES)


def test_a_reading_at_midnight_belongs_to_the_day_it_closes(tmp_path):
    spool = tmp_path / "spool"
    day_end = T0 + 86400  # 2026-10-02T00:00:00Z
    put(spool, "host_samples", "h", _host([T0 + 15, T0 + 43200, day_end]))
    assert pending_dates(None, spool) == ["2026-10-01"]  # from the footer: not 2026-10-02
    con = connect(tmp_path / "w.duckdb")
    load_spool(con, spool)
    assert q(con, "select cast(_date as varchar), count(*) from raw.host_samples group by 1") == [("2026-10-01", 3)]
    assert sorted(dirty_dates(con)) == ["2026-10-01"]
    # a reading a microsecond into the next day is that day's
    put(spool, "host_samples", "h2", _host([day_end + 1e-6, day_end + 15]), date="2026-10-02")
    assert pending_dates(con, spool) == ["2026-10-01", "2026-10-02"]  # 10-01 still dirty (not yet rebuilt)
    load_spool(con, spool)
    assert q(con, "select cast(_date as varchar), count(*) from raw.host_samples group by 1 order by 1") == [
        ("2026-10-01", 3), ("2026-10-02", 2)]
    # a rerun loads nothing twice
    load_spool(con, spool)
    assert q(con, "select count(*) from raw.host_samples") == [(5,)]
    assert dt.date(2026, 10, 2) in {dt.date.fromisoformat(d) for d in dirty_dates(con)}
