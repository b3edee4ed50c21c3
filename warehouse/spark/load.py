"""Load the Parquet spool with Spark into a Parquet lake (HOME/spark/): exactly once, nothing lost.

The driver lists the spool (directory entries only) and classifies files against the manifest
with the DuckDB loader's own :func:`warehouse.ingest.manifest.classify`; the executors read and
conform the files (stage.py); Spark SQL validates (validate.py). Tables, each Parquet:

* ``raw/<kind>/_fid=<file hash>/``: the good rows of one spool file (a changed file's partition is
  replaced, an unchanged one never rewritten, so a reload never duplicates a row);
* ``quarantine/_fid=<file hash>/``: the refused rows (kind, file, row, field, reason, value);
* ``manifest/``: one row per file (fingerprint, SHA-256, rows, rows quarantined, status).
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd

from warehouse.ingest.load import LOAD_ORDER
from warehouse.ingest.manifest import classify
from warehouse.ingest.rules import KEYS
from warehouse.ingest.scan import scan_spool
from warehouse.spark.dialect import render
from warehouse.spark.session import hadoop_path, write_path
from warehouse.spark.stage import file_id, stage_batches, staged_schema
from warehouse.spark.validate import checked, refused

MANIFEST_COLUMNS = ["file", "kind", "date", "node", "size_bytes", "sha256", "rows", "rows_quarantined",
                    "status", "detail", "fingerprint"]


def read_table(spark, lake: Path, name: str):
    """A lake table, or None when it was never written."""
    p = Path(lake) / name
    if not p.exists() or not any(p.glob("_fid=*")) and not any(p.glob("*.parquet")):
        return None
    return spark.read.parquet(hadoop_path(p))  # partition columns (_fid) found under p


def read_manifest(lake: Path) -> pd.DataFrame:
    p = Path(lake) / "manifest" / "manifest.parquet"
    return pd.read_parquet(p) if p.exists() else pd.DataFrame(columns=MANIFEST_COLUMNS)


def _write_manifest(lake: Path, m: pd.DataFrame) -> None:
    d = Path(lake) / "manifest"
    d.mkdir(parents=True, exist_ok=True)
    tmp = d / "manifest.parquet.tmp"
    m[MANIFEST_COLUMNS].sort_values("file").to_parquet(tmp, index=False)
    tmp.replace(d / "manifest.parquet")  # one atomic rename: the manifest is whole or the old one


def load_spool_spark(spark, spool: Path | str, lake: Path | str, kinds=LOAD_ORDER) -> dict:
    """Load every new or changed spool file of ``kinds``; returns rows loaded/quarantined per kind."""
    spool, lake = Path(spool), Path(lake)
    man = read_manifest(lake)
    prev = {r.file: (r.fingerprint, r.sha256, r.status) for r in man.itertuples()}
    pend = classify(scan_spool(spool), prev, spool)
    entries = {r.file: r._asdict() for r in man.itertuples(index=False)}
    report = {"rows_loaded": {}, "rows_quarantined": {}, "files_loaded": 0, "files_duplicate": 0}
    for p in pend:
        if p.state == "duplicate":
            _drop_partitions(lake, p.file.kind, [p.file.rel])
            entries[p.file.rel] = _entry(p, 0, 0, "duplicate", f"byte-identical to {p.copy_of}")
            report["files_duplicate"] += 1
    for kind in kinds:
        batch = [p for p in pend if p.file.kind == kind and p.state != "duplicate"]
        if batch:
            _load_kind(spark, spool, lake, kind, batch, entries, report)
    _write_manifest(lake, pd.DataFrame(list(entries.values()), columns=MANIFEST_COLUMNS))
    return report


def _entry(p, good, bad, status, detail=None) -> dict:
    f = p.file
    return dict(file=f.rel, kind=f.kind, date=f.date, node=f.node, size_bytes=f.size, sha256=p.sha256,
                rows=good, rows_quarantined=bad, status=status, detail=detail, fingerprint=f.fingerprint)


def _drop_partitions(lake: Path, kind: str, rels: list[str]) -> None:
    for rel in rels:
        for t in (f"raw/{kind}", "quarantine"):
            shutil.rmtree(lake / t / f"_fid={file_id(rel)}", ignore_errors=True)


def _staged(spark, spool: Path, kind: str, batch: list):
    files = spark.createDataFrame([(p.file.rel, p.file.date, p.file.link) for p in batch],
                                  "rel string, date string, link boolean")
    files = files.repartition(min(len(batch), spark.sparkContext.defaultParallelism * 4))
    from pyspark.sql.pandas.types import from_arrow_schema

    return files.mapInArrow(stage_batches(str(spool), kind), from_arrow_schema(staged_schema(kind)))


def _load_kind(spark, spool: Path, lake: Path, kind: str, batch: list, entries: dict, report: dict) -> None:
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    rels = [p.file.rel for p in batch]
    _drop_partitions(lake, kind, [r for r in rels if r in entries])  # a changed file replaces its own rows
    staged = _staged(spark, spool, kind, batch).persist(StorageLevel.MEMORY_AND_DISK)
    rows = staged.where("_row >= 0")
    existing = read_table(spark, lake, f"raw/{kind}")
    known = read_table(spark, lake, "raw/replicas") if kind == "requests" else None
    chk = checked(rows, kind, known).persist(StorageLevel.MEMORY_AND_DISK)
    bad = refused(chk, kind, existing).persist(StorageLevel.MEMORY_AND_DISK)
    good = (rows.join(bad.select("_file", "_row"), ["_file", "_row"], "left_anti")
            .withColumn("_date", F.expr(render(KEYS[kind][1], "spark")))
            .withColumn("_loaded_at", F.current_timestamp())
            .withColumn("_fid", F.sha1("_file").substr(1, 20)).drop("_pre", "_whole", "_nrows", "_pdate"))
    good.write.mode("overwrite").partitionBy("_fid").parquet(write_path(lake / "raw" / kind))
    _write_quarantine(lake, kind, bad, staged.where("_row < 0"))
    _record(kind, batch, staged, good_counts=_counts(spark, lake, kind, rels), bad=bad, entries=entries,
            report=report)
    for df in (bad, chk, staged):
        df.unpersist()


def _write_quarantine(lake: Path, kind: str, bad, whole) -> None:
    from pyspark.sql import functions as F

    parts = F.split("_reason", r"\|", 3)
    q = bad.select(F.lit(kind).alias("kind"), F.col("_file").alias("file"), F.col("_row").alias("row"),
                   parts[0].alias("field"), parts[1].alias("reason"),
                   F.expr("nullif(split(_reason, '[|]', 3)[2], '')").alias("value"))
    w = F.split("_whole", r"\|", 3)
    q = q.unionByName(whole.select(F.lit(kind).alias("kind"), F.col("_file").alias("file"),
                                   F.col("_row").alias("row"), F.expr("nullif(split(_whole, '[|]', 3)[1], '')")
                                   .alias("field"), w[2].alias("reason"), F.lit(None).cast("string").alias("value")))
    q = q.withColumn("loaded_at", F.current_timestamp()).withColumn("_fid", F.sha1("file").substr(1, 20))
    q.write.mode("overwrite").partitionBy("_fid").parquet(write_path(lake / "quarantine"))


def _counts(spark, lake: Path, kind: str, rels: list[str]) -> dict:
    """Good rows per file of this batch, counted from what was written (one small aggregate)."""
    from pyspark.sql import functions as F

    t = read_table(spark, lake, f"raw/{kind}")
    if t is None:
        return {}
    fids = list({file_id(r) for r in rels})
    return {f: int(n) for f, n in t.where(F.col("_fid").isin(fids)).groupBy("_file").count().collect()}


def _record(kind, batch, staged, good_counts: dict, bad, entries: dict, report: dict) -> None:
    whole = {r["_file"]: r for r in staged.where("_row < 0").select("_file", "_whole", "_nrows").collect()}
    bad_counts = {f: int(n) for f, n in bad.groupBy("_file").count().collect()}
    for p in batch:
        rel = p.file.rel
        if rel in whole:
            status, _fld, reason = whole[rel]["_whole"].split("|", 2)
            entries[rel] = _entry(p, 0, int(whole[rel]["_nrows"] or 0), status, reason)
            continue
        good, nbad = good_counts.get(rel, 0), bad_counts.get(rel, 0)
        entries[rel] = _entry(p, good, nbad, "loaded")
        report["files_loaded"] += 1
        report["rows_loaded"][kind] = report["rows_loaded"].get(kind, 0) + good
        report["rows_quarantined"][kind] = report["rows_quarantined"].get(kind, 0) + nbad
