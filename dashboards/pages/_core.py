"""Building blocks shared by the pages: the read-only warehouse, page/section/chart types, helpers."""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Union

import altair as alt
import duckdb
import pandas as pd

from dashboards import theme
from dashboards.markup import Markup, html_table, md_code  # noqa: F401 - html_table, md_code re-exported

log = logging.getLogger("dashboards")

#: names of the Vega signals that the page-wide chip selector sets (see assets/site.js)
SIG_CHIP = "tw_chip"
SIG_VENDOR = "tw_vendor"
#: ... and the model selector and the date range (ISO days, compared as strings; "" = open)
SIG_MODEL = "tw_model"
SIG_FROM = "tw_from"
SIG_TO = "tw_to"
SIGNALS = {SIG_CHIP: "all", SIG_VENDOR: "all", SIG_MODEL: "all", SIG_FROM: "0000-01-01", SIG_TO: "9999-12-31"}

#: what to run when a table is missing or empty
HINTS = {
    "attribution.quality": "run `tokenwatt evaluate --home DIR` (it scores the attribution against the "
                           "simulator's ground truth)",
    "marts.fct_loss_forecast": "run `tokenwatt run --home DIR` with the forecast step (it writes "
                               "marts.fct_loss_forecast)",
    "raw.quarantine": "run `tokenwatt run --home DIR` (the spool loader writes raw.quarantine)",
}
DEFAULT_HINT = "run `tokenwatt run --home DIR` (or `tokenwatt demo`) to load the spool and build the marts"


class Warehouse:
    """The warehouse opened read-only; a path that does not exist reads as a warehouse with no tables."""

    def __init__(self, path: Path | None) -> None:
        self.path = Path(path) if path is not None else None
        if self.path is not None and self.path.exists():
            self.con = duckdb.connect(str(self.path), read_only=True)
        else:
            self.con = duckdb.connect(":memory:")
        self.con.execute("set TimeZone = 'UTC'")
        rows = self.con.execute(
            "select table_schema, table_name from information_schema.tables "
            "where table_catalog = current_database()").fetchall()
        self.tables = {f"{s}.{t}" for s, t in rows}
        self._rows: dict[str, int] = {}
        self._cols: dict[str, set[str]] = {}

    def close(self) -> None:
        self.con.close()

    def exists(self, table: str) -> bool:
        return table in self.tables

    def rows(self, table: str) -> int:
        if table not in self._rows:
            self._rows[table] = (self.con.execute(f"select count(*) from {table}").fetchone()[0]
                                 if self.exists(table) else 0)
        return self._rows[table]

    def has(self, table: str) -> bool:
        return self.rows(table) > 0

    def columns(self, table: str) -> set[str]:
        if table not in self._cols:
            s, t = table.split(".", 1)
            self._cols[table] = {r[0] for r in self.con.execute(
                "select column_name from information_schema.columns where table_schema = ? and table_name = ?",
                [s, t]).fetchall()}
        return self._cols[table]

    def df(self, sql: str, params: list | None = None) -> pd.DataFrame:
        return self.con.execute(sql, params or []).df()

    def one(self, sql: str, params: list | None = None):
        return self.con.execute(sql, params or []).fetchone()


@dataclass
class Chart:
    """One chart: an Altair chart over aggregated ``data`` (also written as the chart's CSV)."""

    name: str                      # unique slug: data/<name>.csv, charts/<name>.svg
    chart: alt.TopLevelMixin
    data: pd.DataFrame
    caption: str = ""
    wide: bool = False             # full page width (else half, two per row)
    filter_by: str | None = None   # "chip" | "vendor": listens to the page's chip selector
    image: str = "svg"             # export format for reports; "png" for charts with thousands of marks
    csv: pd.DataFrame | None = None  # the CSV download when ``data`` is finer than what the chart shows
                                     # (per-day rows a date filter adds up): the whole period's figures


@dataclass
class Note:
    text: str | Markup             # plain text (escaped when rendered) or Markup built with dashboards.markup
    kind: str = "nodata"           # nodata | info | error


@dataclass
class Html:
    markup: Markup                 # only Markup (dashboards.markup.h/esc/html_table): never a raw string
    wide: bool = True
    scope: str = "whole"           # "whole": figures of the whole period and fleet, said so on a page with
                                   # filters; "none": no figures (text, a legend)

    def __post_init__(self) -> None:
        if not isinstance(self.markup, Markup):
            raise TypeError("Html blocks take Markup (built with dashboards.markup), not a raw string")


@dataclass
class Live:
    """Cards or a table drawn in the browser (assets/site.js) for the current chip, model and date
    selection, from ``spec``: ``data`` (columns of sums by date, chip, model, ...: small, aggregated in
    DuckDB), ``sums`` (the columns added up), ``measures`` (sum, ratio, diff or share of sums, or max) and
    either ``cards`` or ``group``/``columns`` (a table; ``sortable``, ``csv`` for a download)."""

    name: str
    spec: dict
    wide: bool = True


Block = Union[Chart, Note, Html, Live]


@dataclass
class Section:
    title: str
    intro: str = ""
    blocks: list[Block] = field(default_factory=list)


@dataclass
class Page:
    slug: str                      # file name without .html
    nav: str                       # label in the navigation
    title: str
    intro: str
    sections: list[Section] = field(default_factory=list)


@dataclass
class Ctx:
    wh: Warehouse
    pal: theme.Palette
    period: tuple[str, str] | None  # first and last date with data, ISO
    errors: list[str] = field(default_factory=list)
    models: list[str] = field(default_factory=list)  # for the model selector


def safe(ctx: Ctx, fn: Callable[[Ctx], Section], title: str) -> Section:
    """Build one section; a failure (e.g. a column the contract promised is missing) becomes a visible
    note on the page and an entry in ``ctx.errors`` instead of breaking the whole site."""
    try:
        return fn(ctx)
    except Exception as exc:  # noqa: BLE001 - any failure is shown, logged and reported
        log.exception("section %r failed", title)
        ctx.errors.append(f"{title}: {type(exc).__name__}: {exc}")
        first = str(exc).splitlines()[0] if str(exc) else ""
        return Section(title, blocks=[Note(f"This section could not be drawn: {type(exc).__name__}: {first}", "error")])


PageBuilder = Callable[[Ctx], Page]


# ---------------------------------------------------------------------------------------------- helpers

def no_data(wh: Warehouse, *tables: str) -> Note | None:
    """A "no data yet" note for the first of ``tables`` that is missing or empty, else None."""
    for t in tables:
        if not wh.exists(t):
            return Note(Markup("No data yet: table <code>{}</code> does not exist. To fill it, {}.").format(
                t, md_code(HINTS.get(t, DEFAULT_HINT))))
        if not wh.has(t):
            return Note(Markup("No data yet: table <code>{}</code> is empty. To fill it, {}.").format(
                t, md_code(HINTS.get(t, DEFAULT_HINT))))
    return None


def tidy(df: pd.DataFrame, digits: int = 6) -> pd.DataFrame:
    """Round float columns to ``digits`` significant digits (smaller pages, same picture)."""
    out = df.copy()
    for c in out.columns:
        if pd.api.types.is_float_dtype(out[c]):
            out[c] = out[c].map(lambda x: x if x is None or not math.isfinite(x) or x == 0
                                else round(x, digits - 1 - int(math.floor(math.log10(abs(x))))))
    return out


def chip_filter(chart, field_name: str | None = "chip", *, model: str | None = None, date: str | None = None):
    """Let ``chart`` follow the page's selectors: chip (``field_name`` "chip", or "vendor" for the
    chip's vendor), model (the ``model`` field) and date range (the ``date`` field, ISO days).
    Only field names (constants of the code) go into the expression; the values are signals."""
    terms = []
    if field_name:
        sig = SIG_CHIP if field_name == "chip" else SIG_VENDOR
        terms.append(f"({sig} == 'all' || datum['{field_name}'] == {sig})")
    if model:
        terms.append(f"({SIG_MODEL} == 'all' || datum['{model}'] == {SIG_MODEL})")
    if date:
        day = f"utcFormat(toDate(datum['{date}']), '%Y-%m-%d')"  # a string or an already parsed date
        terms.append(f"({day} >= {SIG_FROM} && {day} <= {SIG_TO})")
    return chart.transform_filter(" && ".join(terms))


def columns(df: pd.DataFrame, digits: int = 10) -> dict[str, list | dict]:
    """A small aggregated DataFrame as JSON columns for a ``Live`` block: text columns dictionary-coded
    (``{"values": [...], "codes": [...]}``, decoded by site.js), numbers to ``digits`` significant
    digits, NaN as null."""
    out: dict[str, list | dict] = {}
    for c in df.columns:
        vals = df[c].astype(object).where(df[c].notna(), None).tolist()
        if df[c].dtype == object:
            uniq = list(dict.fromkeys(vals))
            code = {v: i for i, v in enumerate(uniq)}
            out[c] = {"values": uniq, "codes": [code[v] for v in vals]}
        else:
            out[c] = [None if v is None or (isinstance(v, float) and not math.isfinite(v))
                      else (float(f"{v:.{digits}g}") if isinstance(v, float) else v) for v in vals]
    return out


def time_ticks(span_days: float) -> tuple[dict | int, str]:
    """Tick interval and label format for a UTC time axis spanning ``span_days``: whole days (or weeks,
    months) only, about eight labels, never the same day twice.

    Under two days the ticks are hours, given as a tick *count*: Vega-Lite's schema only admits
    ``{"interval": "hour"}``, but Vega looks intervals up by vega-time unit names ("hours"), finds
    nothing and throws "Cannot read properties of undefined (reading 'every')" - which stops the
    whole view, so the chart draws no marks. A count of 8 lets Vega pick 1/3/6/12-hour steps itself.
    ("day", "week", "month" and "year" are the same word in both and are safe.)"""
    if span_days < 2:
        return 8, "%d %b %H:%M"
    if span_days <= 70:  # every day up to six, then about six labels: "01 Oct" is ~36 px and most
        # daily charts are half the page wide, so eight labels over four weeks touched each other
        return {"interval": "day", "step": 1 if span_days <= 6 else max(2, math.ceil(span_days / 6))}, "%d %b"
    if span_days <= 150:
        return {"interval": "week", "step": max(1, math.ceil(span_days / 7 / 8))}, "%d %b"
    return {"interval": "month", "step": max(1, math.ceil(span_days / 30.4 / 8))}, "%b %Y"


def span_days(dates) -> float:
    """Days from the first to the end of the last of ``dates`` (ISO strings or timestamps)."""
    d = pd.to_datetime(pd.Series(list(dates)), utc=True)
    return ((d.max() - d.min()).total_seconds() / 86400 + 1) if len(d) else 1.0


DAY_MS = 86_400_000


def single_time(dates) -> pd.Timestamp | None:
    """The one distinct UTC time in ``dates`` (ISO strings or timestamps), or None when there are
    none or several. A time axis over one value has a zero-width domain: no ticks, and nothing
    for a line or an area to span, so the charts treat that case on its own."""
    if dates is None:
        return None
    d = pd.to_datetime(pd.Series(list(dates)), utc=True).dropna().unique()
    return pd.Timestamp(d[0]) if len(d) == 1 else None


def _ms(t: pd.Timestamp) -> int:
    return int(t.value // 1_000_000)


def utc_x(field_name: str, title: str | None = "Date (UTC)", *, dates=None, fmt: str | None = None) -> alt.X:
    """A UTC time axis; with ``dates`` (the values drawn) the ticks fall on whole days/weeks/months.

    A single distinct date (a warehouse with one day of data) is put in the middle of a one-day-wide
    axis with one label, so its points show where a reader expects them."""
    axis: dict = {"labelAngle": 0}
    scale = alt.Scale(type="utc")
    one = single_time(dates)
    if one is not None:
        midnight = one == one.normalize()
        scale = alt.Scale(type="utc", domain=[_ms(one) - DAY_MS // 2, _ms(one) + DAY_MS // 2], nice=False)
        axis.update(values=[_ms(one)], format=fmt or ("%d %b %Y" if midnight else "%d %b %Y %H:%M"), grid=False)
    elif dates is not None:
        tc, f = time_ticks(span_days(dates))
        axis.update(tickCount=tc, format=fmt or f)
    else:
        axis.update(format=fmt or "%d %b", tickCount=8)
    return alt.X(f"{field_name}:T", title=title, scale=scale, axis=alt.Axis(**axis))


def one_day_axis(day) -> alt.Axis:
    """The axis of a chart whose whole-day marks cover one day: one label, "01 Oct 2026", under the
    middle of the day (not one at each edge, which reads as two days)."""
    t = pd.Timestamp(day)
    t = t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")
    mid = _ms(t.normalize()) + DAY_MS // 2
    return alt.Axis(values=[mid], format="%d %b %Y", labelAngle=0, grid=False)


def line_points(dates, size: float) -> alt.OverlayMarkDef:
    """The points on a daily line: small on a long series, big enough to read when there is one day
    (a line through a single point draws nothing, so the points are all there is)."""
    return alt.OverlayMarkDef(size=size if single_time(dates) is None else max(4 * size, 90), filled=True)


def day_x(field_name: str = "date", title: str | None = "Date (UTC)", *, dates=None,
          period: tuple[str, str] | None = None) -> alt.X:
    """A UTC day axis for bars: each bar spans its whole day. With ``period`` (first and last ISO day)
    the axis covers the whole period, so one busy day does not fill the chart.

    A single day (one-day period, or one distinct date) gets an axis three days wide with one label
    under the middle of the bar, instead of one bar filling the plot between two day labels."""
    one = (pd.Timestamp(period[0], tz="UTC") if period and period[0] == period[1]
           else single_time(dates) if not period else None)
    if one is not None:
        day = _ms(one.normalize())
        return alt.X(f"{field_name}:T", timeUnit="utcyearmonthdate", title=title,
                     scale=alt.Scale(type="utc", domain=[day - DAY_MS, day + 2 * DAY_MS], nice=False),
                     axis=one_day_axis(one))
    scale = alt.Scale(type="utc", domain=[utc_day(period[0]), utc_day(period[1], 1)]) if period else alt.Undefined
    span = span_days(list(period) if period else dates) if (period or dates is not None) else 28
    tc, fmt = time_ticks(max(span, 2))
    return alt.X(f"{field_name}:T", timeUnit="utcyearmonthdate", title=title, scale=scale,
                 axis=alt.Axis(format=fmt, labelAngle=0, tickCount=tc))


def utc_day(iso: str, plus_days: int = 0) -> dict:
    """A Vega expression for midnight UTC of ``iso`` (YYYY-MM-DD) plus whole days."""
    y, m, d = int(iso[:4]), int(iso[5:7]), int(iso[8:10])
    return {"expr": f"utc({y}, {m - 1}, {d}){f' + {plus_days * 864e5:.0f}' if plus_days else ''}"}


def tt_date(field_name: str, title: str = "Date", fmt: str = "%Y-%m-%d",
            unit: str = "utcyearmonthdate") -> alt.Tooltip:
    """A tooltip for a UTC timestamp, formatted in UTC whatever the viewer's time zone."""
    return alt.Tooltip(f"{unit}({field_name}):T", title=title, format=fmt)


def log_ticks(lo: float, hi: float, max_ticks: int = 8) -> tuple[list[float], list[float]]:
    """Readable tick values (1-2-5, then 1-3, then powers of ten) for a log axis over [lo, hi],
    and a domain that starts and ends on such a value."""
    lo, hi = max(float(lo), 1e-9), max(float(hi), float(lo) * 1.0001, 1e-9)
    e0, e1 = math.floor(math.log10(lo)) - 1, math.ceil(math.log10(hi)) + 1
    fine = sorted(m * 10.0 ** e for e in range(e0, e1 + 1) for m in (1, 2, 5))
    dom = [max([g for g in fine if g <= lo] or [fine[0]]), min([g for g in fine if g >= hi] or [fine[-1]])]
    vals: list[float] = []
    for mult in ((1, 2, 5), (1, 3), (1,)):
        grid = sorted(m * 10.0 ** e for e in range(e0, e1 + 1) for m in mult)
        vals = [float(f"{g:.6g}") for g in grid if dom[0] <= g <= dom[1]]
        if len(vals) <= max_ticks:
            break
    return vals, [float(f"{dom[0]:.6g}"), float(f"{dom[1]:.6g}")]


def fmt_num(x, digits: int = 0, unit: str = "") -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)) or pd.isna(x):
        return "–"
    x = 0 if x == 0 else x  # -0.0 prints as "-0.00"
    if digits and x != 0 and abs(x) < 0.5 * 10 ** -digits:  # tiny but not zero: do not print 0.00
        return f"<{10 ** -digits:.{digits}f}{unit}" if x > 0 else f">-{10 ** -digits:.{digits}f}{unit}"
    return f"{x:,.{digits}f}{unit}"


def fmt_usd(x, digits: int = 2) -> str:
    if x is None or pd.isna(x):
        return "–"
    s = f"${abs(x):,.{digits}f}"
    return f"−{s}" if x < 0 else s


def fmt_big(x, digits: int = 1) -> str:
    """1234567 -> 1.2 M; 13.5e9 -> 13.5 B (finance's billions, not SI's G)"""
    if x is None or pd.isna(x):
        return "–"
    for div, suf in ((1e12, " T"), (1e9, " B"), (1e6, " M"), (1e3, " k")):
        if abs(x) >= div:
            return f"{x / div:,.{digits}f}{suf}"
    return f"{x:,.0f}"


def ordinal(n: int) -> str:
    """1st, 2nd, 3rd, 4th, 11th, 12th, 13th, 21st, 22nd, 23rd, 101st ..."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"
