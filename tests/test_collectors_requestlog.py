"""Request-log JSON Lines -> REQUESTS rows, the RequestLogger and .jsonl conversion."""
from __future__ import annotations

import json
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [p for p in (str(ROOT / "tests"), str(ROOT)) if p not in sys.path]

from collectors.requestlog import RequestLogError, RequestLogger, convert_jsonl, record_to_row  # noqa: E402
from collectors.schema import REQUESTS  # noqa: E402
from collectors.spool import list_files  # noqa: E402

T = 1_750_000_000.0  # 2025-06-15T15:06:40Z


def record(**over):
    base = {
        "request_id": "cmpl-1", "model": "llama-3.1-70b",
        "arrival_time": T, "queued_time": T + 0.001, "scheduled_time": T + 0.02,
        "first_token_time": T + 0.2, "finished_time": T + 2.5,
        "usage": {"prompt_tokens": 812, "completion_tokens": 164, "total_tokens": 976},
        "replica_id": "r3", "node": "gpu-7", "task": "chat", "language": "en", "tier": "api", "status": "ok",
    }
    base.update(over)
    return base


def read_requests(spool: Path) -> pa.Table:
    return pa.concat_tables([pq.read_table(f) for f in list_files(spool, "requests")])


def test_a_record_maps_to_a_requests_row():
    row = record_to_row(record())
    assert list(row) == REQUESTS.names
    assert row["arrival_ts"] == datetime.fromtimestamp(T, tz=timezone.utc)
    assert (row["finish_ts"] - row["arrival_ts"]).total_seconds() == pytest.approx(2.5)
    assert (row["prompt_tokens"], row["completion_tokens"], row["node"], row["status"]) == (812, 164, "gpu-7", "ok")


def test_iso_times_aliases_flat_usage_and_defaults():
    row = record_to_row(
        {"request_id": "x", "model": "m", "arrival_time": "2025-06-15T15:06:40.5Z",
         "first_scheduled_time": "2025-06-15T17:06:40.6+02:00", "last_token_time": "2025-06-15 15:06:42",
         "prompt_tokens": 3, "completion_tokens": 0},
        "fallback-node",
    )
    assert row["arrival_ts"] == datetime(2025, 6, 15, 15, 6, 40, 500000, tzinfo=timezone.utc)
    assert row["scheduled_ts"] == datetime(2025, 6, 15, 15, 6, 40, 600000, tzinfo=timezone.utc)
    assert row["finish_ts"] == datetime(2025, 6, 15, 15, 6, 42, tzinfo=timezone.utc)
    assert row["first_token_ts"] is None and row["status"] == "ok" and row["node"] == "fallback-node"
    assert row["task"] is None and row["tier"] is None


@pytest.mark.parametrize(
    "over, message",
    [
        ({"usage": {"prompt_tokens": 1}}, "completion_tokens is required"),
        ({"usage": {"prompt_tokens": -1, "completion_tokens": 1}}, "non-negative integer"),
        ({"finished_time": T - 1}, "finished_time is before"),
        ({"first_token_time": T - 1}, "first_token_time is before scheduled_time"),
        ({"status": "timeout"}, "status"),
        ({"task": "poetry"}, "task"),
        ({"tier": "gold"}, "tier"),
        ({"arrival_time": "yesterday"}, "arrival_time"),
        ({"request_id": None}, "request_id is required"),
        ({"node": None}, "node is required"),
    ],
)
def test_invalid_records_are_rejected_with_a_reason(over, message):
    with pytest.raises(RequestLogError, match=message):
        record_to_row(record(**over))


def test_logger_flushes_every_n_and_on_close_into_atomic_request_files(tmp_path):
    logger = RequestLogger(tmp_path, node="gpu-7", flush_every_n=3, flush_interval_s=3600, background=False)
    for i in range(7):
        assert logger.log(f"r{i}", "m", T + i, T + i + 1.5, 10 + i, 20, first_token_time=T + i + 0.1,
                          task="code-fix", tier="free", replica_id="r1")
    assert not logger.log("bad", "m", T, T - 1, 1, 1)  # rejected, not buffered
    assert len(list_files(tmp_path, "requests")) == 2
    logger.close()
    files = list_files(tmp_path, "requests")
    assert len(files) == 3 and [f.name for f in files] == sorted(f.name for f in logger.stats.files)
    table = read_requests(tmp_path)
    assert table.schema.equals(REQUESTS)
    assert sorted(table["request_id"].to_pylist()) == [f"r{i}" for i in range(7)]
    assert logger.stats.logged == 7 and logger.stats.rejected == 1 and logger.stats.written_rows == 7
    assert all("date=2025-06-15" in str(f) and "node=gpu-7" in str(f) for f in files)


def test_background_logger_flushes_on_the_interval_without_reaching_n(tmp_path):
    with RequestLogger(tmp_path, node="n", flush_every_n=1000, flush_interval_s=0.1) as logger:
        logger.log("a", "m", T, T + 1, 1, 1)
        deadline = time.monotonic() + 5
        while not list_files(tmp_path, "requests") and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(list_files(tmp_path, "requests")) == 1  # written by the thread, logger still open
    assert read_requests(tmp_path).num_rows == 1


def test_requests_are_partitioned_by_arrival_date(tmp_path):
    midnight = datetime(2025, 6, 16, tzinfo=timezone.utc).timestamp()
    with RequestLogger(tmp_path, node="n", background=False) as logger:
        logger.log("late", "m", midnight - 5, midnight + 5, 1, 1)
        logger.log("early", "m", midnight + 1, midnight + 2, 1, 1)
    parts = sorted(f.parent.parent.name for f in list_files(tmp_path, "requests"))
    assert parts == ["date=2025-06-15", "date=2025-06-16"]


def test_convert_jsonl_skips_bad_lines_and_is_idempotent(tmp_path):
    log_file = tmp_path / "vllm-requests.jsonl"
    lines = [json.dumps(record(request_id=f"ok{i}", arrival_time=T + i, finished_time=T + i + 1,
                               scheduled_time=None, first_token_time=None, queued_time=None)) for i in range(3)]
    lines.insert(1, "{not json")
    lines.insert(3, json.dumps(record(request_id="bad", status="weird")))
    lines.append("")
    log_file.write_text("\n".join(lines) + "\n")
    spool = tmp_path / "spool"
    result = convert_jsonl(log_file, spool)
    assert result.rows_written == 3
    assert [n for n, _ in result.bad_lines] == [2, 4]
    assert "invalid JSON" in result.bad_lines[0][1] and "status" in result.bad_lines[1][1]
    again = convert_jsonl(log_file, spool)
    assert again.files == result.files
    assert read_requests(spool).num_rows == 3


def test_the_request_log_names_a_host_as_the_device_exporters_do(tmp_path):
    """FQDN, case and the alias table: one node name for a machine's devices and its requests."""
    from collectors.exposition import parse_exposition
    from collectors.names import load_host_aliases

    aliases_file = tmp_path / "nodes.yaml"
    aliases_file.write_text("aliases:\n  ip-100-64-171-120.ec2.internal: gpu-8\n")
    aliases = load_host_aliases(aliases_file)
    with RequestLogger(tmp_path / "spool", node="GPU-7.Example.Internal", background=False,
                       aliases=aliases) as logger:
        assert logger.node == "gpu-7"
        assert logger.log_record(record(request_id="a", node=None))
        assert logger.log_record(record(request_id="b", node="gpu-7.example.internal."))
        assert logger.log_record(record(request_id="c", node="IP-100-64-171-120.ec2.internal"))
    rows = {r["request_id"]: r["node"] for r in read_requests(tmp_path / "spool").to_pylist()}
    assert rows == {"a": "gpu-7", "b": "gpu-7", "c": "gpu-8"}
    assert {f.parent.name for f in list_files(tmp_path / "spool", "requests")} == {"node=gpu-7", "node=gpu-8"}

    text = ('DCGM_FI_DEV_POWER_USAGE{gpu="0",UUID="GPU-a",modelName="NVIDIA H100 80GB HBM3",'
            'Hostname="GPU-7.example.internal"} 300\n'
            'DCGM_FI_DEV_POWER_USAGE{gpu="0",UUID="GPU-b",modelName="NVIDIA H100 80GB HBM3",'
            'Hostname="ip-100-64-171-120.ec2.internal"} 300\n')
    scraped = parse_exposition(text, datetime.fromtimestamp(T, tz=timezone.utc), "scraper", "http://x/metrics", aliases)
    assert sorted(r["node"] for r in scraped.device_rows) == ["gpu-7", "gpu-8"]


def test_converting_a_log_normalises_its_host_names(tmp_path):
    log = tmp_path / "requests.jsonl"
    log.write_text(json.dumps(record(request_id="a", node="Gpu-7.corp")) + "\n"
                   + json.dumps(record(request_id="b", node="old-name")) + "\n")
    result = convert_jsonl(log, tmp_path / "spool", aliases={"old-name": "gpu-9"})
    assert result.rows_written == 2 and not result.bad_lines
    assert sorted(read_requests(tmp_path / "spool").column("node").to_pylist()) == ["gpu-7", "gpu-9"]
