"""The dashboard site builder without a browser: files, sizes, offline-ness, contract tolerance."""
from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

if str(Path(__file__).resolve().parents[1]) not in sys.path:  # "from tests.site_fixture import ..." under any runner
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dashboards import theme
from dashboards.site import build_site, main
from tests.site_fixture import build_fixture

PAGES = ["index.html", "energy.html", "cost.html", "fleet.html", "forecast.html", "quality.html", "footprint.html"]
REPO = Path(__file__).resolve().parents[1]


def specs_of(page: Path) -> dict:
    """The page's chart specs whole, as site.js embeds them: each chart's datasets put back from the
    page's shared columns (#tw-data)."""
    doc = page.read_text(encoding="utf-8")
    m = re.search(r'<script type="application/json" id="tw-specs">(.*?)</script>', doc, re.S)
    assert m, page
    specs = json.loads(m.group(1).replace("<\\/", "</"))
    d = re.search(r'<script type="application/json" id="tw-data">(.*?)</script>', doc, re.S)
    shared = json.loads(d.group(1).replace("<\\/", "</")) if d else {}
    for entry in specs.values():
        for name in entry.get("datasets", []):
            cols = {k: [c["values"][i] for i in c["codes"]] if isinstance(c, dict) else c
                    for k, c in shared[name]["columns"].items()}
            entry["spec"].setdefault("datasets", {})[name] = [{k: v[i] for k, v in cols.items()}
                                                              for i in range(shared[name]["n"])]
    return specs


def walk(node, path=()):
    if isinstance(node, dict):
        yield path, node
        for k, v in node.items():
            yield from walk(v, path + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from walk(v, path + (i,))


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    d = tmp_path_factory.mktemp("build")
    db = build_fixture(d / "warehouse.duckdb")
    digest = hashlib.sha256(db.read_bytes()).hexdigest()
    res = build_site(db, d / "site")
    return {"db": db, "digest": digest, "res": res, "site": Path(res["out_dir"])}


def test_writes_every_page_with_shared_nav(built):
    site, res = built["site"], built["res"]
    assert not res["errors"], res["errors"]
    assert sorted(Path(p).name for p in res["pages"]) == sorted(PAGES)
    for p in PAGES:
        doc = (site / p).read_text(encoding="utf-8")
        for q in PAGES:
            assert f'href="{q}"' in doc, (p, q)
        assert 'aria-current="page"' in doc
    assert res["total_bytes"] == sum(f.stat().st_size for f in site.rglob("*") if f.is_file())
    assert res["build_seconds"] > 0
    assert res["charts"] >= 25


def test_pages_are_light_and_share_one_vega_bundle(built):
    site = built["site"]
    bundles = [f for f in site.rglob("*.js") if f.stat().st_size > 100_000]
    assert [b.name for b in bundles] == ["vega-bundle.js"]
    assert bundles[0].parent.name == "assets"
    for p in PAGES:
        size = (site / p).stat().st_size
        assert size < 600_000, (p, size)
        doc = (site / p).read_text(encoding="utf-8")
        assert '<script src="assets/vega-bundle.js"></script>' in doc
        assert "vegaEmbed=" not in doc  # not inlined


def test_no_network_references(built):
    site = built["site"]
    for p in PAGES:
        doc = (site / p).read_text(encoding="utf-8")
        # no remote src/href; the only http(s) strings allowed are Vega-Lite "$schema" ids, never fetched
        assert not re.search(r'(src|href)\s*=\s*["\']?(https?:)?//', doc), p
        for m in re.finditer(r"https?://[^\s\"'<>]+", doc):
            assert m.group(0).startswith("https://vega.github.io/schema/"), (p, m.group(0))
        assert "url(" not in doc
    for _, node in walk([specs_of(site / p) for p in PAGES]):
        data = node.get("data") if isinstance(node.get("data"), dict) else None
        assert not (data and "url" in data), "chart data must be inline (file:// cannot fetch)"
    css = (site / "assets" / "style.css").read_text()
    assert "http" not in css and "@import" not in css


def test_every_chart_has_csv_and_image(built):
    site = built["site"]
    for p in PAGES:
        doc = (site / p).read_text(encoding="utf-8")
        for name in specs_of(site / p):
            csv = site / "data" / f"{name}.csv"
            assert csv.is_file() and csv.read_text().count("\n") >= 2, name
            assert f'href="data/{name}.csv"' in doc
            imgs = [site / "charts" / f"{name}.{ext}" for ext in ("svg", "png")]
            img = next(i for i in imgs if i.is_file())
            assert f'href="charts/{img.name}"' in doc
            head = img.read_bytes()[:200]
            assert head.startswith(b"\x89PNG") or b"<svg" in head, name


def test_charts_read_well(built):
    """Titles, units on quantitative axes, tooltips, and one fixed colour per chip everywhere."""
    site = built["site"]
    for p in PAGES:
        for name, entry in specs_of(site / p).items():
            spec = entry["spec"]
            assert spec.get("title"), name
            assert spec["config"]["font"] == theme.FONT
            assert '"tooltip"' in json.dumps(spec), name
            for path, node in walk(spec):
                if path and path[-1] in ("x", "y") and node.get("type") == "quantitative" and node.get("title"):
                    assert re.search(r"\(.+\)", node["title"]), f"{name}: axis without unit: {node['title']}"
                scale = node.get("scale") if isinstance(node.get("scale"), dict) else None
                if path and path[-1] == "color" and node.get("field") == "chip" and scale:
                    for chip, col in zip(scale["domain"], scale["range"]):
                        assert theme.CHIP_COLORS[chip] == col, (name, chip, col)
                if path and path[-1] == "color" and node.get("field") == "vendor" and scale:
                    for v, col in zip(scale["domain"], scale["range"]):
                        assert theme.VENDOR_COLORS[v] == col, (name, v, col)


#: tick intervals that Vega can look up: Vega-Lite's schema also admits "hour", "minute", "second" and
#: "millisecond", but Vega names those units "hours", ... and throws "Cannot read properties of undefined
#: (reading 'every')", which stops the chart's whole view (no marks at all)
VEGA_INTERVALS = {"day", "week", "month", "year"}


def tick_intervals(site: Path) -> list[tuple[str, str]]:
    out = []
    for p in PAGES:
        for name, entry in specs_of(site / p).items():
            for _, node in walk(entry["spec"]):
                tc = node.get("tickCount")
                if isinstance(tc, dict) and "interval" in tc:
                    out.append((name, tc["interval"]))
    return out


def test_tick_intervals_are_ones_vega_knows(built):
    intervals = tick_intervals(built["site"])
    assert intervals  # the daily charts do use interval ticks
    assert not [x for x in intervals if x[1] not in VEGA_INTERVALS], intervals


def test_one_day_warehouse(tmp_path):
    """The first day of a new fleet: one point per daily series, a forecast without intervals. Every
    chart must still draw; the headless renderer that writes the report images runs the same Vega as
    the browser, so an image for every chart means no chart threw."""
    db = build_fixture(tmp_path / "w.duckdb", n_requests=2000, days=1)
    res = build_site(db, tmp_path / "site")
    assert not res["errors"], res["errors"]
    site = Path(res["out_dir"])
    assert not [x for x in tick_intervals(site) if x[1] not in VEGA_INTERVALS]
    missing = [name for p in PAGES for name in specs_of(site / p)
               if not any((site / "charts" / f"{name}.{ext}").is_file() for ext in ("svg", "png"))]
    assert not missing, f"charts the renderer could not draw: {missing}"
    # no band layers over all-empty interval columns (Vega warns "Infinite extent"); a note says why
    fc_specs = specs_of(site / "forecast.html")
    y_fields = {n.get("field") for path, n in walk(fc_specs["forecast-bands"]["spec"])
                if path and path[-1] in ("y", "y2")}
    assert y_fields == {"loss_usd"}, y_fields
    assert "No prediction intervals yet" in (site / "forecast.html").read_text()
    # the cost stack of one day is a bar (an area over one day has no width)
    mark = specs_of(site / "cost.html")["cost-daily-by-vendor"]["spec"]["mark"]
    assert (mark.get("type") if isinstance(mark, dict) else mark) == "bar", mark


def test_warehouse_opened_read_only(built):
    assert hashlib.sha256(built["db"].read_bytes()).hexdigest() == built["digest"]


def test_pages_do_not_grow_with_requests(tmp_path, built):
    """Aggregated in DuckDB: 5x the requests leaves page sizes about the same (no per-request rows)."""
    db = build_fixture(tmp_path / "big.duckdb", n_requests=200_000)
    res = build_site(db, tmp_path / "site", images=False)
    assert not res["errors"]
    small = built["res"]["page_bytes"]
    for p, n in res["page_bytes"].items():
        assert n < small[p] * 1.25 + 5_000, (p, n, small[p])


def test_missing_and_empty_tables_give_notes(tmp_path):
    db = build_fixture(tmp_path / "w.duckdb", n_requests=300,
                       missing={"attribution.quality", "marts.fct_loss_forecast", "raw.quarantine"},
                       empty={"marts.fct_data_quality_daily", "marts.fct_pnl_daily"})
    res = build_site(db, tmp_path / "site", images=False)
    assert not res["errors"], res["errors"]
    notes = "\n".join(res["notes"])
    assert "attribution.quality" in notes and "tokenwatt evaluate" in notes
    assert "marts.fct_loss_forecast" in notes and "fct_pnl_daily" in notes
    fc = (tmp_path / "site" / "forecast.html").read_text()
    assert "No data yet" in fc and specs_of(tmp_path / "site" / "forecast.html") == {}
    assert len(specs_of(tmp_path / "site" / "energy.html")) >= 5  # the rest still draws


def test_no_warehouse_at_all(tmp_path):
    res = build_site(tmp_path / "nope.duckdb", tmp_path / "site", images=False)
    assert not res["errors"], res["errors"]
    assert len(res["pages"]) == len(PAGES) and res["charts"] == 0
    assert "No data yet" in (tmp_path / "site" / "index.html").read_text()
    assert not (tmp_path / "nope.duckdb").exists()


def test_wrong_column_is_a_visible_error_not_a_crash(tmp_path):
    db = build_fixture(tmp_path / "w.duckdb", n_requests=300)
    con = duckdb.connect(str(db))
    con.execute("alter table marts.fct_device_power_hourly rename column avg_power_w to power_w")
    con.close()
    res = build_site(db, tmp_path / "site", images=False)
    assert any("avg_power_w" in e for e in res["errors"])
    assert "could not be drawn" in (tmp_path / "site" / "fleet.html").read_text()
    assert len(specs_of(tmp_path / "site" / "cost.html")) >= 4


def test_rebuild_replaces_and_refuses_foreign_dirs(tmp_path):
    db = build_fixture(tmp_path / "w.duckdb", n_requests=300)
    out = tmp_path / "site"
    build_site(db, out, images=False)
    (out / "data" / "stale.csv").write_text("x\n1\n")
    build_site(db, out, images=False)
    assert not (out / "data" / "stale.csv").exists()
    foreign = tmp_path / "home"
    foreign.mkdir()
    (foreign / "precious.txt").write_text("keep")
    with pytest.raises(FileExistsError):
        build_site(db, foreign, images=False)
    assert (foreign / "precious.txt").read_text() == "keep"


def test_main_cli(tmp_path, capsys):
    db = build_fixture(tmp_path / "w.duckdb", n_requests=300)
    assert main(["--db", str(db), "--out", str(tmp_path / "s"), "--no-images"]) == 0
    out = capsys.readouterr().out
    assert "index.html" in out and "charts" in out


def test_dashboards_do_not_import_dagster():
    code = "import sys, dashboards.site; bad = [m for m in sys.modules if m.split('.')[0] == 'dagster']; " \
           "assert not bad, bad"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)
    for f in (REPO / "dashboards").rglob("*.py"):
        assert not re.search(r"^\s*(import|from)\s+dagster", f.read_text(), re.M), f
