"""The load asset, daily partitions, the spool sensor and the ingest asset checks (Dagster wiring only).

The logic lives in warehouse/ingest/ (scan, manifest, days, window, checks; no Dagster there):

* Partitions are UTC days, from the first ``date=`` directory of the spool to today (or the last
  day with data, if later). The attribution is partitioned by day; a run over many days is one
  run (``BackfillPolicy.single_run``), never one run per day. The load and the dbt models run in
  the same run over the same window (read from the run's partition tags): the load reads the
  window's ``date=`` files, dbt reads it from ``run.dbt_window`` and its incremental marts replace those days.
  (They are not Dagster-partitioned themselves: Dagster cannot run a partitioned asset downstream
  of another partitioned asset without a partition, and plain unpartitioned runs - schedules,
  ``dg.materialize`` of everything - must keep working; they mean "every day".)
* ``spool_sensor`` lists new and changed spool files against the manifest (fingerprints, then
  hashes: it never loads anything), works out from their Parquet footers which days they touch,
  adds the days the warehouse marked dirty, and asks for one run per contiguous range of those
  days. A late file for an old day re-runs that day's partitions, and only those.
* The ingest checks (freshness per node, completeness per device-day, quarantine rate) are
  evaluated by the load asset on every run and fail with ERROR severity, loudly, without
  stopping the run. Thresholds come from the environment (see :func:`check_settings`).
"""

import datetime as dt
import hashlib
import json
import os

import dagster as dg

from warehouse.ingest.checks import chips_known, completeness_by_device_day, freshness_by_node, quarantine_rate
from warehouse.ingest.days import dirty_dates, file_dates, pending_dates
from warehouse.ingest.manifest import pending
from warehouse.ingest.scan import scan_spool, spool_dates
from warehouse.ingest.window import date_ranges

from collectors.home import Home
from warehouse.attribution.run import data_day_range
from warehouse.ingest.load import load_spool

from pipelines.resources import TokenwattHome

PARTITIONED_JOB = "tokenwatt_partitions"
RAW_KEYS = ["device_samples", "requests", "replicas", "server_counters", "host_samples", "quarantine",
            "manifest"]
RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"


def today_utc() -> dt.date:
    return dt.datetime.now(dt.timezone.utc).date()


def daily_partitions(home: Home | str) -> dg.DailyPartitionsDefinition:
    """UTC days from the spool's first day to today, or to its last day (+1) when that is later."""
    home = home if isinstance(home, Home) else Home(home)
    days = spool_dates(home.spool, kinds=("replicas", "device_samples", "requests"))
    today = today_utc()
    start = dt.date.fromisoformat(days[0]) if days else today
    start = min(start, today)
    last = max(dt.date.fromisoformat(days[-1]) + dt.timedelta(days=1), today) if days else today
    # end_offset counts partitions past the current (incomplete) day: include every data day
    end_offset = max(1, (last - today).days + 1)
    return dg.DailyPartitionsDefinition(start_date=start.isoformat(), end_offset=end_offset, timezone="UTC")


def window(context) -> tuple[str, str] | None:
    """The run's inclusive UTC day window, or None for a run without partitions (= every day).

    Read from the run's partition tags, so the unpartitioned load and dbt assets follow the days of
    the partitioned attribution asset that runs with them."""
    tags = context.run.tags
    start, end = tags.get(RANGE_START), tags.get(RANGE_END)
    if start and end:
        return start, end
    key = tags.get("dagster/partition")
    if key:
        return key, key
    return None


def data_window(home: Home | str) -> tuple[str, str] | None:
    """Every day the spool has data for: partition dates and the days the files' rows touch."""
    home = home if isinstance(home, Home) else Home(home)
    dates = set(spool_dates(home.spool))
    for f in scan_spool(home.spool, kinds=("device_samples", "requests")):
        dates |= file_dates(home.spool, f)
    if not dates:
        return None
    return min(dates), max(dates)


def partition_tags(first: str, last: str) -> dict:
    return {RANGE_START: first, RANGE_END: last}


def check_settings(home: Home) -> dict:
    """Thresholds of the ingest checks, overridable through the environment.

    TOKENWATT_FRESHNESS_MAX_AGE_S (900): a node whose latest sample is older fails freshness.
    TOKENWATT_FRESHNESS_REFERENCE (auto): 'now' (wall clock) or 'data' (the newest sample of the
    fleet); auto = 'data' for a simulated home (sim.json present), else 'now'.
    TOKENWATT_COMPLETENESS_MIN (0.95): received / expected samples per device-day.
    TOKENWATT_QUARANTINE_MAX_RATE (0.01): quarantined / seen rows per kind.
    """
    ref = os.environ.get("TOKENWATT_FRESHNESS_REFERENCE", "auto")
    if ref not in ("now", "data"):
        ref = "data" if home.fleet_meta.exists() else "now"
    return {
        "freshness_max_age_s": float(os.environ.get("TOKENWATT_FRESHNESS_MAX_AGE_S", 900)),
        "freshness_reference": ref,
        "completeness_min": float(os.environ.get("TOKENWATT_COMPLETENESS_MIN", 0.95)),
        "quarantine_max_rate": float(os.environ.get("TOKENWATT_QUARANTINE_MAX_RATE", 0.01)),
    }


RAW_CHECKS = [
    dg.AssetCheckSpec("freshness_per_node", asset=["raw", "device_samples"],
                      description="every node's latest sample is recent (vs the wall clock, or vs the newest "
                                  "sample of the fleet for simulated data); TOKENWATT_FRESHNESS_*"),
    dg.AssetCheckSpec("completeness_per_device_day", asset=["raw", "device_samples"],
                      description="received >= TOKENWATT_COMPLETENESS_MIN x expected samples per device and day "
                                  "of the run's window (expected from the device's median interval)"),
    dg.AssetCheckSpec("quarantine_rate", asset=["raw", "quarantine"],
                      description="quarantined / seen rows per kind of the window's files <= "
                                  "TOKENWATT_QUARANTINE_MAX_RATE"),
    dg.AssetCheckSpec("chips_in_catalog_and_prices", asset=["raw", "device_samples"],
                      description="every chip the window's devices report is in the chip catalog and has a price "
                                  "(else its cost would be a silent $0); the failure names the chip and the file"),
]


def _chip_tables() -> tuple[set, set | None, str, str]:
    """(catalog chips, priced chips or None if the price file does not load, the two files)."""
    from collectors.catalog import CHIPS_FILE, load_chips
    from warehouse.money.prices import load_prices, prices_path

    path = prices_path(os.environ.get("TOKENWATT_PRICES"))  # the file the prices asset reads
    try:
        priced = {c[0] for c in load_prices(path)["chips"]}
    except Exception:  # noqa: BLE001 - the prices asset fails on it, with the reason
        priced = None
    return set(load_chips()), priced, str(CHIPS_FILE), str(path)


def _json(v) -> str:
    return json.dumps(v, default=str, sort_keys=True)[:4000]


def evaluate_raw_checks(context, con, home: Home, first: str, last: str):
    """Yield the ingest AssetCheckResults; log an error for each that fails."""
    cfg = check_settings(home)
    fresh = freshness_by_node(con, cfg["freshness_max_age_s"], cfg["freshness_reference"])
    comp = completeness_by_device_day(con, first, last, cfg["completeness_min"])
    quar = quarantine_rate(con, first, last, cfg["quarantine_max_rate"])
    chips = chips_known(con, first, last, *_chip_tables())
    results = [
        ("freshness_per_node", ["raw", "device_samples"], fresh,
         {"stale_nodes": _json(fresh.get("stale")), "nodes": fresh.get("nodes", 0),
          "worst_age_s": float(fresh.get("worst_age_s") or 0.0), "reference": str(fresh.get("reference")),
          "max_age_s": cfg["freshness_max_age_s"]}),
        ("completeness_per_device_day", ["raw", "device_samples"], comp,
         {"short_device_days": _json(comp["short"][:50]), "device_days": comp["device_days"],
          "worst_ratio": comp["worst_ratio"], "min_ratio": comp["min_ratio"], "window": f"{first}..{last}"}),
        ("quarantine_rate", ["raw", "quarantine"], quar,
         {"rates": _json(quar["rates"]), "over": _json(quar["over"]), "max_rate": quar["max_rate"],
          "window": f"{first}..{last}"}),
        ("chips_in_catalog_and_prices", ["raw", "device_samples"], chips,
         {"failures": chips["failures"], "unknown": _json(chips["unknown"]), "chips": chips["chips"],
          "window": f"{first}..{last}"}),
    ]
    for name, key, res, meta in results:
        if not res["passed"]:
            context.log.error(f"CHECK FAILED {name}: {_json({k: v for k, v in res.items() if k != 'ages_s'})}")
        yield dg.AssetCheckResult(check_name=name, asset_key=key, passed=bool(res["passed"]),
                                  severity=dg.AssetCheckSeverity.ERROR, metadata=meta)


def _run_key(first: str, last: str, items: list) -> str:
    h = hashlib.sha256(json.dumps(items, sort_keys=True).encode()).hexdigest()[:16]
    return f"spool:{first}:{last}:{h}"


def build_spool_sensor(home: Home, job_name: str = PARTITIONED_JOB,
                       partitions_def: dg.DailyPartitionsDefinition | None = None,
                       minimum_interval_seconds: int = 60) -> dg.SensorDefinition:
    """The sensor that turns new, changed and late spool files into partitioned runs."""

    @dg.sensor(name="spool_sensor", job_name=job_name, minimum_interval_seconds=minimum_interval_seconds,
               default_status=dg.DefaultSensorStatus.RUNNING,
               description="New or changed spool files (and days marked dirty) -> one run per contiguous "
                           "range of the UTC days they touch; loads nothing itself")
    def spool_sensor(context: dg.SensorEvaluationContext):
        import duckdb

        busy = context.instance.get_runs(
            filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.STARTING,
                                            dg.DagsterRunStatus.STARTED]), limit=1)
        if busy:  # DuckDB has one writer: do not even open it while a run may be writing
            return dg.SkipReason(f"run {busy[0].run_id} in progress; will look again")
        con = None
        if home.db.exists():
            try:
                con = duckdb.connect(str(home.db), read_only=True)
            except duckdb.Error as exc:  # a run holds the write lock: look again next tick
                return dg.SkipReason(f"warehouse busy: {exc}")
        try:
            files = pending(con, home.spool)
            dates = pending_dates(con, home.spool, files=files)
            dirty = sorted(dirty_dates(con)) if con is not None else []
        finally:
            if con is not None:
                con.close()
        if not dates:
            return dg.SkipReason("no new or changed spool files, no dirty days")
        keys = set(partitions_def.get_partition_keys()) if partitions_def is not None else None
        outside = [d for d in dates if keys is not None and d not in keys]
        if outside:
            context.log.warning(f"days outside the partitions (reload the code location): {outside}")
        inside = [d for d in dates if keys is None or d in keys]
        items = sorted((p.file.rel, p.file.fingerprint, p.state) for p in files) + [("dirty", d) for d in dirty]
        requests = []
        for first, last in date_ranges(inside):
            requests.append(dg.RunRequest(run_key=_run_key(first, last, items), tags=partition_tags(first, last)))
        context.log.info(f"spool sensor: {len(files)} pending files, days {dates} -> "
                         f"{[(r.tags['dagster/asset_partition_range_start'], r.tags['dagster/asset_partition_range_end']) for r in requests]}")
        return requests

    return spool_sensor


def build_raw_tables() -> dg.AssetsDefinition:
    """The load multi-asset: raw.* tables of the run's window, with the three ingest checks."""

    @dg.multi_asset(
        name="raw_tables",
        specs=[dg.AssetSpec(["raw", k], kinds={"duckdb"}, group_name="ingest",
                            description=f"raw.{k}: spool rows loaded exactly once") for k in RAW_KEYS],
        check_specs=RAW_CHECKS,
        can_subset=False,
    )
    def raw_tables(context: dg.AssetExecutionContext, tokenwatt: TokenwattHome):
        """Load the new or changed spool files of the run's days (and undated files) into DuckDB schema
        raw (manifest, quarantine, dirty days); then check freshness, completeness and quarantine rate."""
        win = window(context)
        con = tokenwatt.connect()
        try:
            report = load_spool(con, tokenwatt.home.spool, dates=win, on_batch=context.log.info)
            counts = {k: con.execute(f"select count(*) from raw.{k}").fetchone()[0] for k in RAW_KEYS}
            first, last = win or (data_day_range(con) or (None, None))
            checks = list(evaluate_raw_checks(context, con, tokenwatt.home, str(first), str(last))) \
                if first is not None else []
        finally:
            con.close()
        context.log.info(f"spool load: {report.as_dict()}")
        for k in RAW_KEYS:
            yield dg.MaterializeResult(
                asset_key=["raw", k],
                metadata={"rows": counts[k], "files_loaded": report.files_loaded,
                          "files_unreadable": report.files_unreadable, "files_duplicate": report.files_duplicate,
                          "files_rejected": report.files_rejected, "files_failed": report.files_failed,
                          "dirty_days": len(report.dirty_dates),
                          "window": f"{win[0]}..{win[1]}" if win else "every day"},
            )
        if not checks:  # nothing loaded at all: the checks have nothing to look at
            checks = [dg.AssetCheckResult(check_name=c.name, asset_key=c.asset_key, passed=False,
                                          severity=dg.AssetCheckSeverity.ERROR,
                                          metadata={"reason": "no data in the warehouse"}) for c in RAW_CHECKS]
        yield from checks

    return raw_tables
