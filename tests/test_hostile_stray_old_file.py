"""Issue 19, class 6: one stray old (or far-future) file must not create thousands of partitions.

Partitions and run windows come from the days that can hold loadable rows: partition dates
within the loader's date bounds (collectors.units.MIN_TS to today + 1 day). The stray file's row
is quarantined with its reason and touches no day.
"""
from __future__ import annotations

import datetime as dt

import pytest

from collectors.home import Home
from collectors.units import MIN_TS
from pipelines.ingest import daily_partitions, data_window
from tests.ingest_builders import T0, put, q, samples
from warehouse.attribution.run import data_day_range
from warehouse.ingest.days import dirty_dates, pending_dates
from warehouse.ingest.load import connect, load_spool
from warehouse.ingest.scan import spool_dates

EPOCH_1970 = 0.0
FAR_FUTURE = dt.datetime(2999, 1, 1, tzinfo=dt.timezone.utc).timestamp()


@pytest.fixture
def home(tmp_path):
    h = Home(tmp_path / "home")
    put(h.spool, "device_samples", "good", samples(n=50))
    return h


def _check(home: Home, stray_rel: str, stray_reason: str):
    today = dt.datetime.now(dt.timezone.utc).date()
    assert spool_dates(home.spool) == ["2026-10-01"]
    parts = daily_partitions(home).get_partition_keys()
    assert parts[0] == "2026-10-01"
    assert len(parts) <= (today - dt.date(2026, 10, 1)).days + 3  # from the data's first day, not 1970
    assert data_window(home) == ("2026-10-01", "2026-10-01")
    assert pending_dates(None, home.spool) == ["2026-10-01"]
    con = connect(home.root / "w.duckdb")
    load_spool(con, home.spool)
    assert q(con, "select count(*) from raw.device_samples") == [(50,)]
    assert q(con, "select file, row, field, reason from raw.quarantine") == [(stray_rel, 0, "ts", stray_reason)]
    assert sorted(dirty_dates(con)) == ["2026-10-01"]
    assert data_day_range(con) == (dt.date(2026, 10, 1), dt.date(2026, 10, 1))
    con.close()


def test_a_stray_1970_file_does_not_widen_the_partitions(home):
    stray = put(home.spool, "device_samples", "old", samples(n=1, start=EPOCH_1970 + 60), date="1970-01-01")
    assert dt.date.fromisoformat("1970-01-01") < dt.date.fromisoformat(MIN_TS)
    _check(home, stray, "timestamp too far in the past")


def test_a_far_future_file_and_a_day_before_the_bounds_do_not_either(home):
    future = put(home.spool, "device_samples", "future", samples(n=1, start=FAR_FUTURE + 60), date="2999-01-01")
    _check(home, future, "timestamp in the future")
    # a partition just before the loader's first day: its rows are refused as well
    put(home.spool, "device_samples", "early", samples(n=1, start=T0 - 86400 * 365 * 12), date="2014-12-31")
    assert spool_dates(home.spool) == ["2026-10-01"]
    assert daily_partitions(home).get_partition_keys()[0] == "2026-10-01"
