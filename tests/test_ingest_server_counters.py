"""The server_counters spool kind (scraped vllm:* / sglang:* counters) loads into raw.server_counters
through the same rules as every kind: bad rows quarantined with their reason, a rerun duplicates nothing."""
from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [p for p in (str(ROOT), str(ROOT / "tests")) if p not in sys.path]

from collectors.exposition import ServerCounters  # noqa: E402
from collectors.prometheus import write_server_counters  # noqa: E402
from ingest_builders import DAY  # noqa: E402
from warehouse.ingest.load import connect, load_spool  # noqa: E402


def counters(n=10, node="gpu-7", model="llama-3.1-70b", server="vllm", **over):
    out = []
    for i in range(n):
        c = ServerCounters(DAY + dt.timedelta(seconds=15 * (i + 1)), node, "http://gpu-7:8000/metrics", server, model,
                           prompt_tokens_total=1000.0 * i, generation_tokens_total=200.0 * i,
                           request_success_total=float(i), requests_running=1.0, requests_waiting=0.0)
        for k, v in over.items():
            setattr(c, k, v(i) if callable(v) else v)
        out.append(c)
    return out


def test_server_counters_load_once_with_bad_rows_quarantined(tmp_path):
    spool = tmp_path / "spool"
    good = counters()
    bad = counters(3, model="other", request_success_total=lambda i: -1.0 if i == 1 else float(i))
    write_server_counters(spool, good, "scrape-a")
    write_server_counters(spool, bad + counters(1, model="x", server="tgi"), "scrape-b")
    con = connect(tmp_path / "w.duckdb")
    rep = load_spool(con, spool)
    assert rep.rows_loaded["server_counters"] == 12 and rep.rows_quarantined["server_counters"] == 2
    rows = con.execute("select model, count(*), max(request_success_total) from raw.server_counters "
                       "group by model order by model").fetchall()
    assert rows == [("llama-3.1-70b", 10, 9.0), ("other", 2, 2.0)]
    q = con.execute("select field, reason, value, file like 'server_counters/date=2026-10-01/node=gpu-7/%' "
                    "from raw.quarantine order by field").fetchall()
    assert q == [("request_success_total", "counter not a non-negative number", "-1.0", True),
                 ("server", "unknown server", "tgi", True)]
    # a rerun loads nothing again; the same scrape re-sent under another name is a duplicate of loaded rows
    write_server_counters(spool, good[:2], "scrape-c")
    rep = load_spool(con, spool)
    assert rep.rows_loaded.get("server_counters", 0) == 0 and rep.rows_quarantined["server_counters"] == 2
    assert con.execute("select count(*) from raw.server_counters").fetchone()[0] == 12
    assert con.execute("select count(*) from raw.quarantine where reason like 'duplicate%'").fetchone()[0] == 2
