"""The ingest data-quality checks the Dagster asset checks report: freshness per node, completeness
per device-day, quarantine rate per kind. Pure SQL over ``raw``; no Dagster here."""
from __future__ import annotations

import datetime as dt

def freshness_by_node(con, max_age_s: float, reference: str = "data") -> dict:
    """Age of each node's latest sample. ``reference``: 'data' measures against the newest sample
    of the whole fleet (simulated or replayed data), 'now' against the wall clock."""
    rows = con.execute("""
        select node, max(ts) as last_ts from raw.device_samples group by node order by node
    """).fetchall()
    if not rows:
        return {"passed": False, "stale": [], "nodes": 0, "reason": "no device samples"}
    if reference == "now":
        ref = dt.datetime.now(dt.timezone.utc)
    else:
        ref = max(r[1] for r in rows)
    ages = {r[0]: (ref - r[1]).total_seconds() for r in rows}
    stale = sorted(n for n, a in ages.items() if a > max_age_s)
    return {"passed": not stale, "stale": stale, "nodes": len(rows), "reference": reference,
            "reference_ts": ref.isoformat(), "max_age_s": max_age_s,
            "worst_age_s": max(ages.values()), "ages_s": ages}


def completeness_by_device_day(con, first: str, last: str, min_ratio: float) -> dict:
    """Received vs expected samples per device and day in [first, last]. Expected = the span of
    the day the device was sampled in (from midnight to midnight, or from its first/last sample
    on its first/last day) divided by the device's median sampling interval."""
    rows = con.execute("""
        with s as (
            select device_id, _date as date, epoch(ts) as t,
                   epoch(ts) - lag(epoch(ts)) over (partition by device_id order by ts) as dt
            from raw.device_samples where _date between ? and ?
        ),
        dev as (
            select device_id, median(dt) filter (where dt > 0) as interval_s,
                   min(t) as first_t, max(t) as last_t
            from s group by device_id
        ),
        days as (
            select device_id, date, count(*) as received, min(t) as t0, max(t) as t1 from s group by all
        )
        select d.device_id, d.date, d.received,
               (least(epoch(d.date + interval 1 day), dev.last_t + dev.interval_s)
                 - greatest(epoch(d.date), dev.first_t)) / dev.interval_s as expected
        from days d join dev using (device_id)
        where dev.interval_s > 0
        order by d.device_id, d.date
    """, [first, last]).fetchall()
    short = [(r[0], str(r[1]), int(r[2]), float(r[3])) for r in rows if r[3] > 0 and r[2] < min_ratio * r[3]]
    worst = min((r[2] / r[3] for r in rows if r[3] > 0), default=1.0)
    return {"passed": not short and bool(rows), "device_days": len(rows), "short": short,
            "worst_ratio": float(min(worst, 1.0)), "min_ratio": min_ratio,
            "reason": None if rows else "no device samples in the window"}


def quarantine_rate(con, first: str, last: str, max_rate: float) -> dict:
    """Refused rows / rows seen, per kind, over the files of the window's partitions (files with
    no usable partition date count in every window). Unreadable files count as refused."""
    rows = con.execute("""
        select kind, sum(rows) as good, sum(rows_quarantined) as bad,
               count(*) filter (where status in ('unreadable', 'rejected', 'error')) as bad_files,
               count(*) as files
        from raw.manifest
        where (try_cast(date as date) between ? and ? or try_cast(date as date) is null)
          and status <> 'duplicate'
        group by kind order by kind
    """, [first, last]).fetchall()
    rates = {}
    for kind, good, bad, bad_files, files in rows:
        seen = (good or 0) + (bad or 0)
        rates[kind] = {"rows": int(seen), "quarantined": int(bad or 0),
                       "rate": float(bad or 0) / seen if seen else 0.0,
                       "unreadable_files": int(bad_files), "files": int(files)}
    over = sorted(k for k, v in rates.items() if v["rate"] > max_rate)
    return {"passed": not over, "over": over, "rates": rates, "max_rate": max_rate}


def chips_known(con, first: str, last: str, catalog: set[str], priced: set[str] | None,
                catalog_file: str, price_file: str) -> dict:
    """Every chip the devices of the window report is in the chip catalog (rated, idle and
    phase power) and has a price (hardware cost). A chip missing from either is an ERROR, never a
    silent $0 or a made-up idle power: the failure names the chip, its devices and nodes, and the
    file and section to add it to. ``priced`` None: the price file could not be read (the prices
    asset reports why), so only the catalog is checked."""
    rows = con.execute("""
        select chip, count(distinct device_id) as devices, list(distinct node order by node) as nodes
        from raw.device_samples where _date between ? and ? and chip is not null
        group by chip order by chip
    """, [first, last]).fetchall()
    unknown, failures = [], []
    for chip, devices, nodes in rows:
        missing = [what for what, known in (("catalog", catalog), ("prices", priced))
                   if known is not None and chip not in known]
        if not missing:
            continue
        where = [f"the chip catalog {catalog_file} (section chips:)" if m == "catalog"
                 else f"the price file {price_file} (section chips:)" for m in missing]
        shown = ", ".join(nodes[:5]) + (f" and {len(nodes) - 5} more" if len(nodes) > 5 else "")
        failures.append(f"chip {chip!r} ({devices} device(s) on {shown}) is not in "
                        + " nor in ".join(where) + ": add it there")
        unknown.append({"chip": chip, "devices": int(devices), "nodes": list(nodes), "missing": missing})
    return {"passed": not unknown, "chips": len(rows), "unknown": unknown, "failures": "; ".join(failures) or "none"}
