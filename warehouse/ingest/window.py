"""Run windows: contiguous day ranges, dbt's day window (``run.dbt_window`` or ``--vars``), and the mart days a
rebuild can change."""
from __future__ import annotations

import datetime as dt


def date_ranges(dates) -> list[tuple[str, str]]:
    """Contiguous runs of ISO days, as inclusive (first, last) pairs, in order."""
    days = sorted({dt.date.fromisoformat(d) if isinstance(d, str) else d for d in dates})
    out = []
    for d in days:
        if out and (d - out[-1][1]).days == 1:
            out[-1][1] = d
        else:
            out.append([d, d])
    return [(a.isoformat(), b.isoformat()) for a, b in out]


def dbt_window_vars(first: str | dt.date, last: str | dt.date) -> dict:
    """dbt ``--vars`` for the inclusive UTC day window [first, last] (models filter on it)."""
    a = first if isinstance(first, dt.date) else dt.date.fromisoformat(str(first)[:10])
    b = last if isinstance(last, dt.date) else dt.date.fromisoformat(str(last)[:10])
    if b < a:
        raise ValueError(f"empty window: {a} > {b}")
    return {"min_date": a.isoformat(), "max_date": b.isoformat()}


def write_dbt_window(con, first_last: tuple[str, str] | None) -> None:
    """The days the day-partitioned dbt models rebuild (dbt/macros/day_window.sql): ``run.dbt_window``
    holds one row (first, last), or none for every day. Passed through the warehouse rather than
    ``--vars`` so that dbt's command line is the same for every window and its partial parse carries
    over from one run to the next (other ``--vars`` make dbt parse the whole project again)."""
    con.execute("create schema if not exists run")
    con.execute("create table if not exists run.dbt_window (min_date date, max_date date)")
    con.execute("delete from run.dbt_window")
    if first_last is not None:
        v = dbt_window_vars(*first_last)
        con.execute("insert into run.dbt_window values (cast(? as date), cast(? as date))",
                    [v["min_date"], v["max_date"]])


def dbt_window(con, first: str, last: str) -> tuple[str, str]:
    """The days whose mart rows a rebuild of attribution days [first, last] can change.

    The marts key requests by arrival day; a request that arrived before ``first`` and ran into
    the window has energy there, so its arrival day is rebuilt too (usually ``first - 1`` when
    requests cross midnight, else ``first``)."""
    a = dt.date.fromisoformat(str(first)[:10])
    b = dt.date.fromisoformat(str(last)[:10])
    lo = dt.datetime(a.year, a.month, a.day, tzinfo=dt.timezone.utc)
    hi = dt.datetime(b.year, b.month, b.day, tzinfo=dt.timezone.utc) + dt.timedelta(days=1)
    try:
        r = con.execute("""
            select min(cast(arrival_ts as date)) from raw.requests
            where _date between ? and ? and finish_ts >= ? and coalesce(scheduled_ts, arrival_ts) < ?
        """, [a - dt.timedelta(days=1), b + dt.timedelta(days=1), lo, hi]).fetchone()[0]
    except Exception:
        r = None
    start = min(a, r) if r is not None else a
    return start.isoformat(), b.isoformat()
