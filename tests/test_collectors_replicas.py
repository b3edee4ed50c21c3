"""replicas.yaml -> the replicas spool kind, through `tokenwatt replicas`, and loaded by the real loader."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [p for p in (str(ROOT),) if p not in sys.path]

from collectors.replicas import ReplicaFileError, load_replicas  # noqa: E402
from collectors.schema import REPLICAS  # noqa: E402
from collectors.spool import list_files, write_partition  # noqa: E402

TP4 = """\
aliases: nodes.yaml
replicas:
  - replica_id: llama70b-r0
    node: GPU-7.example.internal
    model: llama-3.1-70b
    chip: nvidia-h100-sxm
    devices: [0, 1, 2, 3]
    valid_from: 2026-10-01T00:00:00Z
  - replica_id: llama70b-r1
    node: ip-10-0-0-8.ec2.internal
    model: llama-3.1-70b
    chip: nvidia-h100-sxm
    devices: [GPU-aaa, GPU-bbb, 2, 3]
    valid_from: 2026-10-01
"""


def cli(*args):
    return subprocess.run([sys.executable, "-m", "pipelines.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})


def device_sample(spool, node, index, uuid):
    from collectors.base import empty_row, rows_to_table
    import datetime as dt

    row = {**empty_row(), "ts": dt.datetime(2026, 10, 1, tzinfo=dt.timezone.utc), "node": node,
           "device_id": f"{node}/{index}", "device_index": index, "device_uuid": uuid, "chip": "nvidia-h100-sxm",
           "vendor": "nvidia", "power_w": 300.0, "power_kind": "avg_1s", "source": "dcgm-exporter"}
    write_partition(spool, "device_samples", "2026-10-01", node, rows_to_table([row]))


def test_tensor_parallel_4_replicas_written_and_rewritten_in_place(tmp_path):
    spool = tmp_path / "spool"
    (tmp_path / "nodes.yaml").write_text("aliases:\n  ip-10-0-0-8: gpu-8\n")
    (tmp_path / "replicas.yaml").write_text(TP4)
    device_sample(spool, "gpu-8", 0, "GPU-aaa")
    device_sample(spool, "gpu-8", 1, "GPU-bbb")
    r = cli("replicas", "--file", str(tmp_path / "replicas.yaml"), "--spool", str(spool))
    assert r.returncode == 0, r.stderr
    files = list_files(spool, "replicas")
    rows = sorted(pa.concat_tables([pq.read_table(f) for f in files]).to_pylist(), key=lambda r: r["replica_id"])
    assert pq.read_schema(files[0]).equals(REPLICAS)
    ids = [r["device_ids"] if isinstance(r["device_ids"], list) else r["device_ids"].split(",") for r in rows]
    assert ids == [[f"gpu-7/{i}" for i in range(4)], [f"gpu-8/{i}" for i in range(4)]]
    assert [r["node"] for r in rows] == ["gpu-7", "gpu-8"]
    # moved to a later day: the rerun replaces the earlier partition's file, it does not add one
    (tmp_path / "replicas.yaml").write_text(TP4.replace("valid_from: 2026-10-01T00:00:00Z", "valid_from: 2026-10-02T06:00:00Z"))
    assert cli("replicas", "--file", str(tmp_path / "replicas.yaml"), "--spool", str(spool)).returncode == 0
    again = list_files(spool, "replicas")
    assert len(again) == 2 and any("date=2026-10-02" in str(f) for f in again)
    assert sum(pq.read_metadata(f).num_rows for f in again) == 2


@pytest.mark.parametrize("edit, message", [
    (("devices: [0, 1, 2, 3]", "devices: [0, 1, 1, 3]"), "names a device twice"),
    (("devices: [0, 1, 2, 3]", "devices: []"), "replicas[0].devices' must be a non-empty list"),
    (("model: llama-3.1-70b\n    chip", "modle: x\n    chip"), "unknown field 'replicas[0].modle'"),
    (("valid_from: 2026-10-01T00:00:00Z", "valid_from: yesterday"), "replicas[0].valid_from' must be an ISO-8601"),
    (("GPU-aaa", "GPU-zzz"), "UUID 'GPU-zzz' is in no device sample"),
    (("replica_id: llama70b-r1", "replica_id: llama70b-r0"), "replica 'llama70b-r0' is given twice"),
])
def test_a_bad_file_is_refused_naming_the_file_and_field(tmp_path, edit, message):
    (tmp_path / "nodes.yaml").write_text("aliases:\n  ip-10-0-0-8: gpu-8\n")
    device_sample(tmp_path / "spool", "gpu-8", 0, "GPU-aaa")
    device_sample(tmp_path / "spool", "gpu-8", 1, "GPU-bbb")
    path = tmp_path / "replicas.yaml"
    path.write_text(TP4.replace(*edit))
    with pytest.raises(ReplicaFileError, match=str(path).replace(".", r"\.")) as exc:
        load_replicas(path, tmp_path / "spool")
    assert message in str(exc.value)
    r = cli("replicas", "--file", str(path), "--spool", str(tmp_path / "spool"))
    assert r.returncode == 2 and message in r.stderr and not list_files(tmp_path / "spool", "replicas")
