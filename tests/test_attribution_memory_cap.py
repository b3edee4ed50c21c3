"""The attribution run caps DuckDB's buffer memory for its passes and gives the connection its own
setting back; a value it cannot read back safely is refused rather than put into SQL."""
from __future__ import annotations

import duckdb
import pytest

from warehouse.attribution.config import AttributionConfig
from warehouse.ingest.ddl import ensure_schema
from warehouse.attribution.run import _memory_capped, _setting, run_attribution_days


def _limit(con):
    return con.execute("select current_setting('memory_limit')").fetchone()[0]


def test_the_cap_holds_inside_the_run_and_the_old_limit_comes_back(tmp_path):
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    con.execute("set memory_limit = '3GB'")
    before = _limit(con)
    with _memory_capped(con, 600):
        assert _limit(con) != before and _limit(con).startswith("572")  # 600 MB in MiB
    assert _limit(con) == before
    with _memory_capped(con, 0):  # 0: the connection's own limit
        assert _limit(con) == before


def test_an_empty_window_runs_under_the_cap_and_restores_it(tmp_path):
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    con.execute("set memory_limit = '2GB'")
    before = _limit(con)
    cfg = AttributionConfig.load()
    assert cfg.duckdb_memory_limit_mb == 600  # attribution.yaml's value
    ensure_schema(con)
    run_attribution_days(con, "2026-01-01", "2026-01-03", cfg=cfg)
    assert _limit(con) == before


@pytest.mark.parametrize("bad", ["1GB'; drop table x; --", "1GB\n"])
def test_a_limit_that_is_not_a_plain_size_is_refused(bad):
    with pytest.raises(ValueError, match="memory_limit"):
        _setting(bad)
