"""The file manifest (``raw.manifest``): which spool files the warehouse holds, and which need loading.

* :func:`classify` compares a listing (:func:`warehouse.ingest.scan.scan_spool`) with the manifest:
  a file is *new*, *changed* (its bytes differ from what was loaded), *duplicate* (byte-identical
  to another loaded file), *retry* (its last load failed) or *unchanged*. Only files whose
  fingerprint moved are hashed, so a sensor tick over an unchanged spool reads no data; and of
  those, only the ones whose size another file shares (or whose earlier version had the same
  size): a file of a size no other file has cannot be a copy, and the loader hashes it from the
  bytes it reads anyway (``Pending.sha256`` None), so a new file is read once, not twice.
* :func:`record` writes one file's entry; :func:`requeue_unknown_replicas` marks request files for
  a retry once a replica they referred to has arrived.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from warehouse.ingest.scan import SpoolFile, scan_spool, sha256_file


@dataclass(frozen=True)
class Pending:
    file: SpoolFile
    state: str          # new | changed | duplicate | retry
    sha256: str | None = None   # None: not hashed here (no other file of its size); the loader hashes it
    copy_of: str | None = None  # for duplicates: the file whose bytes were loaded


def read_manifest(con) -> dict[str, tuple]:
    """file -> (fingerprint, sha256, status) from ``raw.manifest`` (empty if there is none yet)."""
    try:
        rows = con.execute("select file, fingerprint, sha256, status from raw.manifest").fetchall()
    except Exception:  # no warehouse or an old manifest without fingerprints
        try:
            rows = [(f, None, s, st) for f, s, st in
                    con.execute("select file, sha256, status from raw.manifest").fetchall()]
        except Exception:
            return {}
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


def _fp_size(fp) -> int | None:
    """The size recorded in a fingerprint ``size:mtime_ns:inode`` (None: a link or unknown)."""
    try:
        return int(fp.split(":", 1)[0])
    except (AttributeError, ValueError):
        return None


def classify(files: list[SpoolFile], manifest: dict[str, tuple], spool: Path | str,
             hash_fn=sha256_file) -> list[Pending]:
    """Which listed files need loading. Hashes only files whose fingerprint is not the manifest's.

    Byte-identical files are loaded once: a file whose bytes were already loaded under another
    name, or that shares its bytes with an earlier delivery in this listing (older mtime, then
    path order), is a duplicate. A duplicate whose original has since changed (its bytes are no
    longer loaded anywhere) is loaded in its own right.
    """
    spool = Path(spool)
    loaded = {}
    loaded_sizes: set[int] = set()
    sizes_known = True
    for rel, (fp, sha, status) in manifest.items():
        if status == "loaded" and sha:
            loaded.setdefault(sha, rel)
            size = _fp_size(fp)
            if size is None:
                sizes_known = False  # an entry without a size: hash every moved file
            else:
                loaded_sizes.add(size)
    moved = []
    for f in files:
        prev = manifest.get(f.rel)
        orphan = prev is not None and prev[2] == "duplicate" and prev[1] not in loaded
        if prev is not None and prev[0] == f.fingerprint and prev[2] != "error" and not orphan:
            continue
        moved.append((f, prev, orphan))
    moved_sizes: dict[int, int] = {}
    for f, _prev, _orphan in moved:
        moved_sizes[f.size] = moved_sizes.get(f.size, 0) + 1
    candidates = []
    for f, prev, orphan in moved:
        # a file can only be a copy of (or unchanged from) a file of the same size
        must_hash = (f.link or orphan or not sizes_known or f.size in loaded_sizes or moved_sizes[f.size] > 1
                     or (prev is not None and _fp_size(prev[0]) in (None, f.size)))
        if must_hash:
            try:
                digest = hash_fn(spool / f.rel)
            except FileNotFoundError:
                continue
        else:
            digest = None
        if digest is not None and prev is not None and prev[1] == digest and prev[2] != "error" and not orphan:
            continue  # touched, not changed (the loader refreshes its fingerprint)
        candidates.append((f, prev, digest))
    first_delivery = {}
    for f, _prev, digest in sorted(candidates, key=lambda c: (c[0].mtime_ns, c[0].rel)):
        if digest is not None and digest not in loaded and not f.link:
            first_delivery.setdefault(digest, f.rel)
    out = []
    for f, prev, digest in candidates:
        original = None if f.link or digest is None else (loaded.get(digest) or first_delivery.get(digest))
        if original is not None and original != f.rel:
            out.append(Pending(f, "duplicate", digest, original))
        elif prev is not None and prev[2] == "error":
            out.append(Pending(f, "retry", digest))
        elif prev is not None:
            out.append(Pending(f, "changed", digest))
        else:
            out.append(Pending(f, "new", digest))
    return out


def pending(con, spool: Path | str) -> list[Pending]:
    """Files of the spool that a load would read (new, changed, retried) or record (duplicates)."""
    manifest = read_manifest(con) if con is not None else {}
    return classify(scan_spool(spool), manifest, spool)


def record(con, f: SpoolFile, digest, rows, bad, status, detail=None) -> None:
    """Write (replace) one file's manifest entry."""
    con.execute("delete from raw.manifest where file = ?", [f.rel])
    con.execute(
        "insert into raw.manifest (file, kind, date, node, size_bytes, sha256, rows, rows_quarantined, status, "
        "detail, loaded_at, fingerprint) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, now(), ?)",
        [f.rel, f.kind, f.date, f.node, f.size, digest, rows, bad, status, detail, f.fingerprint],
    )


def requeue_unknown_replicas(con) -> int:
    """Request files with rows quarantined for an unknown replica that is now known: mark them for a
    retry (status ``error``), so the next classification reloads them. Returns how many."""
    files = [r[0] for r in con.execute("""
        select distinct q.file from raw.quarantine q
        where q.kind = 'requests' and q.reason = 'unknown replica'
          and q.value in (select replica_id from raw.replicas)
    """).fetchall()]
    if files:
        con.execute("update raw.manifest set status = 'error' where file in (select unnest(?::varchar[]))", [files])
    return len(files)
