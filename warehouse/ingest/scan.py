"""List the spool: whole Parquet files with a cheap fingerprint, and the partition days it holds.

Listing reads directory entries and ``lstat`` only, never file contents. Names are data: a listed
name is only ever opened as that one path (never handed to a reader that globs).

* Every regular file whose name ends in ``.parquet`` is listed, a leading ``.`` included (an old
  writer kept a node's leading dot; the spool writer's temporary files end in ``.tmp``, so a
  ``*.parquet`` name is always a whole file). Hidden directories are not entered.
* A symbolic link is listed with ``link=True`` and refused by the loader (quarantine row and a
  ``rejected`` manifest entry): rows are only ever stored under the path the manifest records,
  and nothing outside the spool is read through it.
* Partition days outside the loader's date bounds (:data:`collectors.units.MIN_TS` to today + 1 day)
  are ignored by :func:`spool_dates`: such a directory cannot hold a loadable row.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from collectors.units import MIN_TS

KINDS = ("replicas", "device_samples", "requests", "server_counters", "host_samples")
#: rows with timestamps before this are refused by the loader (and never widen a window)
FAR_PAST = dt.date.fromisoformat(MIN_TS)


@dataclass(frozen=True)
class SpoolFile:
    rel: str            # path relative to the spool, with '/' separators
    kind: str
    date: str | None    # the date= partition, when it parses as a date
    node: str | None
    size: int
    fingerprint: str    # size:mtime_ns:inode; a new fingerprint means "hash me again"
    mtime_ns: int = 0
    link: bool = False  # a symbolic link (refused by the loader)


def partition_values(rel: str) -> tuple[str | None, str | None]:
    """(date, node) from a hive path; the date only if it is a valid ISO date."""
    date = node = None
    for part in rel.split("/"):
        if part.startswith("date="):
            date = part[5:]
        elif part.startswith("node="):
            node = part[5:]
    if date is not None:
        try:
            dt.date.fromisoformat(date)
        except ValueError:
            date = None
    return date, node


def fingerprint(st: os.stat_result) -> str:
    return f"{st.st_size}:{st.st_mtime_ns}:{st.st_ino}"


def date_bounds(today: dt.date | None = None) -> tuple[dt.date, dt.date]:
    """The loader's date bounds: (MIN_TS, today + 1 day), inclusive."""
    today = today or dt.datetime.now(dt.timezone.utc).date()
    return FAR_PAST, today + dt.timedelta(days=1)


def scan_spool(spool: Path | str, kinds=KINDS, dates: tuple[str, str] | None = None) -> list[SpoolFile]:
    """Whole ``*.parquet`` files of ``kinds`` (spool temporary files excluded), sorted by path.

    With ``dates=(lo, hi)`` only files whose ``date=`` partition is inside the window, and files
    without a usable partition date, are listed.
    """
    spool = Path(spool)
    out = []
    for kind in kinds:
        root = spool / kind
        if not root.is_dir():
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in filenames:
                if not name.endswith(".parquet"):
                    continue
                path = Path(dirpath) / name
                rel = path.relative_to(spool).as_posix()
                date, node = partition_values(rel)
                if dates is not None and date is not None and not (dates[0] <= date <= dates[1]):
                    continue
                try:
                    st = path.lstat()
                except FileNotFoundError:
                    continue
                link = stat.S_ISLNK(st.st_mode)
                if not link and not stat.S_ISREG(st.st_mode):
                    continue
                fp = ("link:" if link else "") + fingerprint(st)
                out.append(SpoolFile(rel, kind, date, node, st.st_size, fp, st.st_mtime_ns, link))
    out.sort(key=lambda f: (KINDS.index(f.kind) if f.kind in KINDS else 99, f.rel))
    return out


def sha256_file(path: Path | str) -> str:
    """SHA-256 of a file's bytes; of a symbolic link, of its target's name (the target is not read)."""
    path = Path(path)
    if path.is_symlink():
        return hashlib.sha256(b"symlink:" + os.fsencode(os.readlink(path))).hexdigest()
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def spool_dates(spool: Path | str, kinds=("device_samples", "requests"), today: dt.date | None = None) -> list[str]:
    """Every partition date the spool has data for, within the loader's date bounds (from the
    directory names, reads nothing). A stray ``date=1970-01-01`` is not a day of data."""
    lo, hi = date_bounds(today)
    out = set()
    for kind in kinds:
        root = Path(spool) / kind
        if not root.is_dir():
            continue
        for p in root.iterdir():
            if p.is_dir() and p.name.startswith("date="):
                d, _ = partition_values(p.name)
                if d and lo <= dt.date.fromisoformat(d) <= hi:
                    out.add(d)
    return sorted(out)
