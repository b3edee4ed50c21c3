"""Issue 19, class 10: request-log values that used to crash are rejected with file, line and field.

``arrival_time`` 1e20 or in the year 9999, token counts NaN or Inf: the converter
(``python -m collectors.request_convert``, and :func:`convert_jsonl`) reports each such line and goes
on with the next; ``RequestLogger.log_record`` returns False with the reason and never raises into
the server. The variant: lines that are not UTF-8, JSON nested past the parser's depth, a JSON list,
an unusable node name and a datetime in the year 9999 passed to ``log``.
"""
from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [p for p in (str(ROOT),) if p not in sys.path]

from collectors.rejects import read_rejects  # noqa: E402
from collectors.requestlog import RequestLogger, convert_jsonl  # noqa: E402
from collectors.spool import list_files  # noqa: E402

T = 1_750_000_000.0


def good(i: int) -> dict:
    return {"request_id": f"ok{i}", "model": "m", "node": "n", "arrival_time": T + i, "finished_time": T + i + 1,
            "usage": {"prompt_tokens": 10, "completion_tokens": 5}}


def bad(i: int, **over) -> dict:
    record = good(i)
    record["request_id"] = f"bad{i}"
    usage = over.pop("usage", None)
    if usage:
        record["usage"] = {**record["usage"], **usage}
    record.update(over)
    return record


HOSTILE = [  # (record, field named in the reason)
    (bad(0, arrival_time=1e20), "arrival_time"),
    (bad(1, arrival_time="9999-12-31T23:59:59-05:00"), "arrival_time"),
    (bad(2, arrival_time="9999-06-01T00:00:00Z", finished_time="9999-06-01T00:00:01Z"), "arrival_time"),
    (bad(3, usage={"prompt_tokens": float("nan")}), "usage.prompt_tokens"),
    (bad(4, usage={"completion_tokens": float("inf")}), "usage.completion_tokens"),
    (bad(5, usage={"prompt_tokens": -float("inf")}), "usage.prompt_tokens"),
    (bad(6, finished_time=float("inf")), "finished_time"),
]


def read_requests(spool: Path) -> pa.Table:
    return pa.concat_tables([pq.read_table(f) for f in list_files(spool, "requests")])


def write_log(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def test_the_converter_command_rejects_each_crashing_value_and_goes_on(tmp_path):
    lines, expected = [], {}
    for i, (record, fld) in enumerate(HOSTILE):
        lines.append(json.dumps(good(i)))
        lines.append(json.dumps(record))  # json writes NaN / Infinity, as Python servers do
        expected[len(lines)] = fld
    lines.append(json.dumps(good(99)))
    log = write_log(tmp_path / "vllm.jsonl", lines)
    proc = subprocess.run([sys.executable, "-m", "collectors.request_convert", str(log), "--spool",
                           str(tmp_path / "spool")], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["rows_written"] == len(HOSTILE) + 1 and summary["rejected_lines"] == len(HOSTILE)
    for line_no, fld in expected.items():
        assert f"rejected: vllm.jsonl:{line_no}: field '{fld}':" in proc.stderr
    ids = sorted(read_requests(tmp_path / "spool")["request_id"].to_pylist())
    assert ids == sorted([f"ok{i}" for i in range(len(HOSTILE))] + ["ok99"])
    rejects = read_rejects(tmp_path / "spool", "requests")
    assert sorted(r["row"]["line"] for r in rejects) == sorted(expected)


def test_the_logger_returns_false_with_the_reason_and_never_raises(tmp_path):
    with RequestLogger(tmp_path, node="n", background=False) as logger:
        for record, fld in HOSTILE:
            assert logger.log_record(record) is False
            assert logger.stats.last_reject.startswith(fld)
        assert logger.log_record(good(1)) is True
    assert logger.stats.rejected == len(HOSTILE) and logger.stats.written_rows == 1
    assert read_requests(tmp_path).num_rows == 1
    assert {r["row"]["request_id"] for r in read_rejects(tmp_path, "requests")} == {r["request_id"] for r, _ in HOSTILE}


def test_variant_undecodable_deep_and_odd_lines(tmp_path):
    log = tmp_path / "odd.jsonl"
    with open(log, "wb") as fh:
        fh.write(json.dumps(good(0)).encode() + b"\n")
        fh.write(b'{"request_id": "\xff\xfe", "model": "m"}\n')       # line 2: not UTF-8
        fh.write(b"[" * 100_000 + b"\n")                              # line 3: nested past the parser
        fh.write(b"[1, 2, 3]\n")                                      # line 4: not an object
        fh.write(json.dumps(bad(4, node="gpu\u0007node")).encode() + b"\n")  # line 5: control character
        fh.write(json.dumps(bad(5, usage={"prompt_tokens": 1e400})).encode() + b"\n")  # line 6: 1e400 = inf
        fh.write(json.dumps(good(6)).encode() + b"\n")
    result = convert_jsonl(log, tmp_path / "spool")
    assert result.rows_written == 2
    reasons = dict(result.bad_lines)
    assert sorted(reasons) == [2, 3, 4, 5, 6]
    assert "not valid UTF-8" in reasons[2] and "invalid JSON" in reasons[3] and "JSON object" in reasons[4]
    assert "field 'node'" in reasons[5] and "control character" in reasons[5]
    assert "field 'usage.prompt_tokens'" in reasons[6]
    assert all(r.startswith(f"odd.jsonl:{n}:") for n, r in result.bad_lines)


def test_variant_log_with_a_datetime_in_the_year_9999(tmp_path):
    far = datetime(9999, 12, 31, 23, 0, tzinfo=timezone.utc)
    with RequestLogger(tmp_path, node="n", background=False) as logger:
        assert logger.log("x", "m", far, far, 1, 1) is False
        assert "arrival_time" in logger.stats.last_reject and "2100-01-01" in logger.stats.last_reject
        assert logger.log("y", "m", T, T + 1, 1, 1) is True
    logger.close()
    assert logger.log("z", "m", T, T + 1, 1, 1) is False  # closed: refused, not raised
    assert "closed" in logger.stats.last_reject


@pytest.mark.parametrize("value", [float("nan"), float("inf"), 1e20, -1e20, "1e20"])
def test_every_time_field_refuses_non_finite_and_far_times(value):
    from collectors.request_record import RequestLogError, record_to_row

    for fld in ("arrival_time", "scheduled_time", "first_token_time", "finished_time", "queued_time"):
        with pytest.raises(RequestLogError) as exc:
            record_to_row({**good(0), fld: value})
        assert exc.value.field == fld
