"""The static dashboard site: ``build_site(db_path, out_dir)`` and ``python -m dashboards.site``.

Reads the warehouse (docs/marts.md) read-only, aggregates in DuckDB, and writes one folder:

    index.html energy.html cost.html fleet.html forecast.html quality.html footprint.html
    assets/vega-bundle.js  one local copy of vega + vega-lite + vega-embed (from vl-convert)
    assets/site.js, assets/style.css
    data/<chart>.csv       the aggregated data of each chart
    charts/<chart>.svg     each chart as an image for reports

Pages open from file:// with no network: no CDN, no fetch (chart data is in the page).
This module does not import dagster; the pipeline wraps ``build_site`` in an asset.
"""
from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from string import Template

from dashboards import theme
from dashboards.markup import Markup, esc, h, join, json_for_script
from dashboards.pages import cost, energy, fleet, footprint, forecast, overview, quality
from dashboards.pages._core import SIGNALS, Chart, Ctx, Html, Live, Note, Page, Warehouse
from dashboards.scope import follows, ignored_filters, scope_line
from dashboards.vlc_export import BUNDLE, title_text, write_bundle, write_images

log = logging.getLogger("dashboards")

ASSETS = Path(__file__).parent / "assets"
BUILDERS = [overview.build, energy.build, cost.build, fleet.build, forecast.build, quality.build, footprint.build]
MARKER = ".tokenwatt-site"


def _palette(wh: Warehouse) -> theme.Palette:
    chips: set[str] = set()
    vendors: set[str] = set()
    for t in ("marts.fct_cost_per_token_daily", "marts.fct_device_energy_daily", "marts.fct_device_power_hourly"):
        if wh.has(t):
            for c, v in wh.con.execute(f"select distinct chip, vendor from {t}").fetchall():
                if c is not None:
                    chips.add(c)
                if v is not None:
                    vendors.add(v)
    if not chips and wh.has("marts.fct_request_energy"):
        for c, v in wh.con.execute("select distinct chip, vendor from marts.fct_request_energy").fetchall():
            chips.add(c)
            vendors.add(v)
    if wh.has("marts.fct_pnl_daily"):
        vendors |= {v for (v,) in wh.con.execute("select distinct vendor from marts.fct_pnl_daily").fetchall()
                    if v and v != "all"}
    return theme.Palette(chips, vendors)


def _period(wh: Warehouse) -> tuple[str, str] | None:
    for t, col in (("marts.fct_cost_per_token_daily", "date"), ("marts.fct_pnl_daily", "date"),
                   ("marts.fct_device_energy_daily", "date")):
        if wh.has(t):
            lo, hi = wh.one(f"select strftime(min({col}), '%Y-%m-%d'), strftime(max({col}), '%Y-%m-%d') from {t}")
            return lo, hi
    return None


def _models(wh: Warehouse) -> list[str]:
    for t in ("marts.fct_cost_per_token_daily", "marts.fct_request_energy"):
        if wh.has(t):
            return [m for (m,) in wh.con.execute(f"select distinct model from {t} where model is not null "
                                                 "order by 1").fetchall()]
    return []


def _chip_vendor(wh: Warehouse) -> dict[str, str]:
    for t in ("marts.fct_cost_per_token_daily", "marts.fct_device_power_hourly"):
        if wh.has(t):
            return dict(wh.con.execute(f"select chip, min(vendor) from {t} group by chip").fetchall())
    return {}


#: Vega's expression parser reads U+2028/U+2029 inside a string literal as a line break and throws
#: ("Unexpected token ILLEGAL"), and Vega-Lite writes sort lists and some filters as expressions with
#: the values in them: one name holding such a character stopped the whole chart. In chart specs they
#: are carried as a space; the tables and the CSV keep the names exactly.
_LINE_SEPARATORS = str.maketrans({"\u2028": " ", "\u2029": " "})


def _no_line_separators(obj):
    if isinstance(obj, str):
        return obj.translate(_LINE_SEPARATORS)
    if isinstance(obj, list):
        return [_no_line_separators(v) for v in obj]
    if isinstance(obj, dict):
        return {_no_line_separators(k): _no_line_separators(v) for k, v in obj.items()}
    return obj


def _spec(chart: Chart) -> dict:
    spec = _no_line_separators(chart.chart.to_dict())
    spec["config"] = theme.vl_config()
    if chart.filter_by:
        params = spec.setdefault("params", [])
        params += [{"name": k, "value": v} for k, v in SIGNALS.items()]
    return spec


def _nav(pages: list[Page], current: str) -> Markup:
    return join(h("a", p.nav, href=f"{p.slug}.html", aria_current="page" if p.slug == current else None)
                for p in pages)


def _charts(page: Page) -> list[Chart]:
    return [b for s in page.sections for b in s.blocks if isinstance(b, Chart)]


def _figure(b: Chart, spec: dict, image_ext: dict[str, str], active: list[str]) -> Markup:
    ext = image_ext.get(b.name)
    img = h("a", f"Image ({ext.upper()})", href=f"charts/{b.name}.{ext}", download=True) if ext else ""
    ignored = ignored_filters(active, follows(spec))
    return h("figure",
             h("div", class_="vis", id=f"chart-{b.name}", role="img", aria_label=title_text(spec)),
             h("figcaption", h("span", b.caption or ""),
               h("span", h("a", "Data (CSV)", href=f"data/{b.name}.csv", download=True), img, class_="dl")),
             scope_line(ignored),
             class_="chart wide" if b.wide else "chart", id=f"fig-{b.name}", data_ignores=" ".join(ignored))


def _block(b, specs: dict, live: dict, all_specs: dict[str, dict], image_ext: dict[str, str],
           active: list[str]) -> Markup:
    if isinstance(b, Chart):
        specs[b.name] = {"spec": all_specs[b.name], "filter": b.filter_by}
        return _figure(b, all_specs[b.name], image_ext, active)
    if isinstance(b, Note):
        return h("div", b.text, class_=f"note {b.kind}")
    if isinstance(b, Html):
        ignored = ignored_filters(active, set()) if b.scope == "whole" else []
        return h("div", b.markup, scope_line(ignored), class_="htmlblock" if b.wide else "htmlblock half",
                 data_ignores=" ".join(ignored) if b.scope == "whole" else None)
    if isinstance(b, Live):
        live[b.name] = b.spec
        cls = ("htmlblock live" + ("" if b.wide else " half") + (" scroll" if b.spec.get("scroll") else "")
               + (" dense" if b.spec.get("dense") else ""))
        data = b.spec.get("data", {})
        follow = {f for f, cols in (("chip", ("chip", "vendor")), ("model", ("model",)), ("dates", ("date",)))
                  if any(c in data for c in cols)}  # site.js filters on the columns the data has
        ignored = ignored_filters(active, follow)
        box = h("div", h("div", "Loading\u2026", class_="note info"), class_=cls, id=f"live-{b.name}",
                data_ignores=" ".join(ignored))
        if not ignored:
            return box
        return h("div", box, scope_line(ignored), class_="live-wrap" + ("" if b.wide else " half"))
    raise TypeError(f"unknown block {type(b).__name__}")


def _selector(ctx: Ctx, chip_vendor: dict[str, str]) -> Markup:
    """The filters: chip, model, date range (carried across pages in the URL hash by site.js)."""
    opts = [h("option", "all chips", value="all", data_vendor="all")] + [
        h("option", c, value=c, data_vendor=chip_vendor.get(c, "all")) for c in ctx.pal.chips]
    parts = [h("label", "Show chip ", h("select", *opts, id="tw-chip"))]
    if ctx.models:
        mopts = [h("option", "all models", value="all")] + [h("option", m, value=m) for m in ctx.models]
        parts.append(h("label", "Model ", h("select", *mopts, id="tw-model")))
    if ctx.period:
        lo, hi = ctx.period
        parts.append(h("label", "From ", h("input", type="date", id="tw-from", min=lo, max=hi, value=lo)))
        parts.append(h("label", "to ", h("input", type="date", id="tw-to", min=lo, max=hi, value=hi)))
    parts.append(h("button", "Reset", type="button", id="tw-reset"))
    return h("div", *parts, class_="filters", role="group", aria_label="Filters")


def _render_page(page: Page, pages: list[Page], ctx: Ctx, chip_vendor: dict[str, str], tmpl: Template,
                 source: str, built: str, all_specs: dict[str, dict], image_ext: dict[str, str]) -> str:
    pal = ctx.pal
    specs: dict[str, dict] = {}
    live: dict[str, dict] = {}
    parts: list[Markup] = []
    blocks = [b for sec in page.sections for b in sec.blocks]
    has_selector = bool(pal.chips) and any(isinstance(b, Live) or (isinstance(b, Chart) and b.filter_by)
                                           for b in blocks)
    # the filters this page's bar shows: a block that ignores one of them says so under itself
    active = (["dates"] if ctx.period else []) + ["chip"] + (["model"] if ctx.models else []) if has_selector else []
    for sec in page.sections:
        parts.append(h("section", h("h2", sec.title), h("p", sec.intro, class_="sec-intro") if sec.intro else "",
                       h("div", *[_block(b, specs, live, all_specs, image_ext, active) for b in sec.blocks],
                         class_="grid")))
    key = join(h("span", h("span", class_="sw", style=f"background:{c}"), chip)
               for chip, c in zip(pal.chips, pal.chip_range))
    selector = _selector(ctx, chip_vendor) if has_selector else ""
    period = (f"Data from {ctx.period[0]} to {ctx.period[1]} (UTC)" if ctx.period else "No data in the warehouse yet")
    data = _shared_datasets(specs)
    values = dict(title=page.title, nav=_nav(pages, page.slug), period=period, key=key, selector=selector,
                  heading=page.title, intro=page.intro, content=join(parts, "\n"), built=built, source=source,
                  specs=json_for_script(specs), data=json_for_script(data), live=json_for_script(live))
    return tmpl.substitute({k: esc(v) for k, v in values.items()})


def _columns_of(rows: list) -> dict | None:
    """Row records as columns (text dictionary-coded, like a ``Live`` block's data), or None when a
    value is not a scalar (such a dataset stays inline in its spec)."""
    keys = list(dict.fromkeys(k for r in rows for k in r))
    out: dict[str, list | dict] = {}
    for k in keys:
        vals = [r.get(k) for r in rows]
        if any(isinstance(v, (dict, list)) for v in vals):
            return None
        if any(isinstance(v, str) for v in vals):
            uniq = list(dict.fromkeys(vals))
            code = {v: i for i, v in enumerate(uniq)}
            out[k] = {"values": uniq, "codes": [code[v] for v in vals]}
        else:
            out[k] = vals
    return {"n": len(rows), "columns": out}


def _shared_datasets(specs: dict[str, dict]) -> dict[str, dict]:
    """Move the charts' inline datasets out of their specs into one page-level store of columns
    (``#tw-data``), each dataset once however many charts draw it (Altair names a dataset by the hash
    of its content); assets/site.js puts fresh rows back into each spec before embedding it. A page
    whose charts filter per-day rows stays small: no key repeated per row, no dataset twice."""
    data: dict[str, dict] = {}
    for entry in specs.values():
        spec = entry["spec"]
        moved = []
        for name, rows in (spec.get("datasets") or {}).items():
            if name not in data:
                cols = _columns_of(rows) if isinstance(rows, list) else None
                if cols is None:
                    continue
                data[name] = cols
            moved.append(name)
        if moved:
            entry["spec"] = {**spec, "datasets": {k: v for k, v in spec["datasets"].items() if k not in moved}}
            entry["datasets"] = moved
    return data


def _swap_in(tmp: Path, out_dir: Path) -> None:
    """Replace ``out_dir`` by the finished build in ``tmp`` (renames, then the old one is removed)."""
    old = None
    if out_dir.exists():
        old = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}")
        out_dir.rename(old)
    tmp.rename(out_dir)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def build_site(db_path: Path, out_dir: Path, *, images: bool = True) -> dict:
    """Build the static site from the warehouse at ``db_path`` into ``out_dir``.

    ``out_dir`` is replaced as a whole (built next to it, then swapped in); it must be empty, missing
    or a previous build of this site. Returns ``{"pages", "page_bytes", "total_bytes", "build_seconds",
    "charts", "notes", "errors", "out_dir"}``; ``errors`` lists sections that failed to draw.
    """
    t0 = time.perf_counter()
    db_path, out_dir = Path(db_path), Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()) and not (out_dir / MARKER).exists():
        raise FileExistsError(f"{out_dir} is not empty and is not a tokenwatt site; refusing to replace it")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    tmp.chmod(0o755)
    try:
        wh = Warehouse(db_path)
        try:
            ctx = Ctx(wh, _palette(wh), _period(wh), models=_models(wh))
            pages = [b(ctx) for b in BUILDERS]
            chip_vendor = _chip_vendor(wh)
        finally:
            wh.close()
        for sub in ("assets", "data", "charts"):
            (tmp / sub).mkdir()
        write_bundle(tmp / "assets" / BUNDLE, out_dir / "assets" / BUNDLE)
        for name in ("site.js", "style.css"):
            shutil.copyfile(ASSETS / name, tmp / "assets" / name)
        tmpl = Template((ASSETS / "page.html").read_text(encoding="utf-8"))
        built = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        page_bytes: dict[str, int] = {}
        all_charts = [c for p in pages for c in _charts(p)]
        names = [c.name for c in all_charts]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"duplicate chart names: {sorted(dup)}")
        specs = {c.name: _spec(c) for c in all_charts}
        for c in all_charts:
            (c.data if c.csv is None else c.csv).to_csv(tmp / "data" / f"{c.name}.csv", index=False)
        image_ext = write_images(tmp / "charts", all_charts, specs) if images else {}
        notes: list[str] = []
        for page in pages:
            doc = _render_page(page, pages, ctx, chip_vendor, tmpl, db_path.name, built, specs, image_ext)
            notes += [f"{page.slug}: {b.text}" for s in page.sections for b in s.blocks if isinstance(b, Note)]
            data = doc.encode("utf-8")
            (tmp / f"{page.slug}.html").write_bytes(data)
            page_bytes[f"{page.slug}.html"] = len(data)
        (tmp / MARKER).write_text("built by dashboards.site.build_site\n", encoding="utf-8")
        _swap_in(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    total = sum(f.stat().st_size for f in out_dir.rglob("*") if f.is_file())
    result = {
        "out_dir": str(out_dir),
        "pages": [str(out_dir / p) for p in page_bytes],
        "page_bytes": page_bytes,
        "total_bytes": total,
        "build_seconds": round(time.perf_counter() - t0, 3),
        "charts": len(all_charts),
        "notes": notes,
        "errors": list(ctx.errors),
    }
    log.info("site built: %d pages, %d charts, %.1f kB, %.2f s", len(page_bytes), len(all_charts), total / 1e3,
             result["build_seconds"])
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m dashboards.site",
                                 description="Build the static dashboard site from the warehouse.")
    ap.add_argument("--db", type=Path, required=True, help="warehouse DuckDB file (opened read-only)")
    ap.add_argument("--out", type=Path, required=True, help="output folder (replaced)")
    ap.add_argument("--no-images", action="store_true", help="skip the SVG/PNG export of each chart")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    res = build_site(a.db, a.out, images=not a.no_images)
    for p, n in res["page_bytes"].items():
        print(f"{p:16s} {n / 1024:8.1f} KiB")
    print(f"{res['charts']} charts, {res['total_bytes'] / 1024:.0f} KiB in all, {res['build_seconds']:.2f} s "
          f"-> {res['out_dir']}/index.html")
    for e in res["errors"]:
        print(f"error: {e}", file=sys.stderr)
    return 1 if res["errors"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
