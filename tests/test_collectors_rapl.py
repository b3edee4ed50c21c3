"""The RAPL host-energy backend over a fixture powercap tree: wraps, a missing DRAM domain, bad reads."""
from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from collectors.base import BackendUnavailable
from collectors.rapl import RaplBackend, discover, write_host_samples
from collectors.spool import list_files

WRAP_UJ = 262143328850  # a common max_energy_range_uj of a package zone


def zone(path: Path, name: str, energy_uj: int, wrap_uj: int | None = WRAP_UJ) -> Path:
    path.mkdir(parents=True)
    (path / "name").write_text(name + "\n")
    (path / "energy_uj").write_text(f"{energy_uj}\n")
    if wrap_uj is not None:
        (path / "max_energy_range_uj").write_text(f"{wrap_uj}\n")
    return path


@pytest.fixture
def sysfs(tmp_path):
    root = tmp_path / "powercap"
    p0 = zone(root / "intel-rapl:0", "package-0", WRAP_UJ - 5_000_000)       # 5 J below the wrap
    zone(p0 / "intel-rapl:0:0", "core", 1_000)                                # not kept
    d0 = zone(p0 / "intel-rapl:0:2", "dram", 2_000_000, wrap_uj=65712999613)
    p1 = zone(root / "intel-rapl:1", "package-1", 10_000_000)                 # no DRAM subzone
    zone(root / "intel-rapl-mmio:0", "package-0", 7)                          # mmio duplicate: not a rapl:N zone
    return root, p0, d0, p1


def set_uj(zone_dir: Path, value: int) -> None:
    (zone_dir / "energy_uj").write_text(f"{value}\n")


def test_discovers_packages_and_dram_only_where_present(sysfs):
    root, *_ = sysfs
    doms = {d.name: d for d in discover(root)}
    assert sorted(doms) == ["dram-0", "package-0", "package-1"]
    assert doms["package-0"].wrap_j == pytest.approx(WRAP_UJ * 1e-6)
    assert doms["dram-0"].wrap_j == pytest.approx(65712999613 * 1e-6)


def test_wrap_is_added_back_and_joules_are_right(sysfs, tmp_path):
    root, p0, d0, p1 = sysfs
    t = iter([1000.0, 1001.0, 1002.0])
    be = RaplBackend(node="host-a", root=root, clock=lambda: next(t))
    first = {r["domain"]: r for r in be.sample()}
    assert all(r["energy_delta_j"] is None for r in first.values())  # no previous reading yet
    set_uj(p0, 3_000_000)            # wrapped: 5 J to the top + 3 J after = 8 J
    set_uj(d0, 2_750_000)            # +0.75 J
    set_uj(p1, 10_000_000 + 42_500_000)  # +42.5 J
    second = {r["domain"]: r for r in be.sample()}
    assert second["package-0"]["energy_delta_j"] == pytest.approx(8.0, abs=1e-6)
    assert second["dram-0"]["energy_delta_j"] == pytest.approx(0.75, abs=1e-9)
    assert second["package-1"]["energy_delta_j"] == pytest.approx(42.5, abs=1e-9)
    assert second["package-0"]["energy_counter_j"] == pytest.approx(3.0)
    set_uj(p0, 4_000_000)
    third = {r["domain"]: r for r in be.sample()}
    assert third["package-0"]["energy_delta_j"] == pytest.approx(1.0, abs=1e-9)

    spool = tmp_path / "spool"
    write_host_samples(spool, list(first.values()) + list(second.values()) + list(third.values()), name="t")
    files = list_files(spool, "host_samples")
    assert len(files) == 1 and "node=host-a" in str(files[0])
    tab = pq.read_table(files[0]).to_pylist()
    assert len(tab) == 9
    total = {}
    for r in tab:
        total[r["domain"]] = total.get(r["domain"], 0.0) + (r["energy_delta_j"] or 0.0)
    assert total["package-0"] == pytest.approx(9.0, abs=1e-6)
    assert total["dram-0"] == pytest.approx(0.75, abs=1e-9)
    assert total["package-1"] == pytest.approx(42.5, abs=1e-9)
    assert {r["source"] for r in tab} == {"rapl"}


def test_an_unreadable_domain_is_counted_and_the_others_go_on(sysfs):
    root, p0, d0, p1 = sysfs
    be = RaplBackend(node="h", root=root, clock=lambda: 5.0)
    (d0 / "energy_uj").write_text("garbage\n")
    rows = be.sample()
    assert sorted(r["domain"] for r in rows) == ["package-0", "package-1"]
    assert be.errors_by_domain == {"dram-0": 1}


def test_no_powercap_is_a_clear_message(tmp_path):
    with pytest.raises(BackendUnavailable, match="RAPL not available"):
        RaplBackend(node="h", root=tmp_path / "nothing")
