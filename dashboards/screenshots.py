"""``python -m dashboards.screenshots``: rebuild docs/screenshots/ from data anyone can regenerate.

1. The site fixture's warehouse (``python -m tests.site_fixture``: 28 days, three chips, 40,000
   requests, a few faults of each kind; it has no fct_token_economics, fct_power_model or
   fct_forecast_coverage, so those sections show their "No data yet" note), or with ``--home DIR``
   the warehouse of a pipeline-built home (``tokenwatt demo --fleet tiny --days 10 --home DIR``:
   simulated, evaluated and run, every mart filled) -> the site -> one full-page PNG per page (index,
   energy, cost, fleet, forecast, quality), each checked first as the browser tests check a page (every chart
   drew marks, no console error, no request off the machine).
2. ``--chaos``: two days of the simulator's ``chaos`` preset through the real pipeline
   (``tokenwatt simulate --fleet chaos --days 2`` and ``tokenwatt run``, about 45 CPU seconds) ->
   quality-chaos.png, the Data quality page with quarantined rows, a lost device's gap, a counter reset
   and a corrected clock skew.
3. ``--clean``: two days of the ``tiny`` preset (a clean fleet) through the real pipeline ->
   quality-clean.png, the Data quality page's all-green coverage heatmap (device x day).

The data come from subprocesses (the fixture lives with the tests; the pipeline imports Dagster, which
dashboards/ never does). Headless Chromium through :mod:`dashboards.browser`; 1280 px wide, drawn at
``--scale`` (0.75 by default: a quarter fewer pixels each way keeps the PNGs small and still legible).
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from dashboards.browser import PAGES, Browser, check_page
from dashboards.site import build_site

REPO = Path(__file__).resolve().parents[1]


def _run(*args: str) -> None:
    print("+ python -m " + " ".join(args), file=sys.stderr, flush=True)
    subprocess.run([sys.executable, "-m", *args], cwd=REPO, check=True)


def shoot(site: Path, out: Path, pages: list[str], browser: Browser, scale: float, suffix: str = "") -> list[Path]:
    """Check each page of the built ``site`` and save it as ``out/<page><suffix>.png``."""
    paths = []
    for page in pages:
        check_page(browser, site, page)  # raises AssertionError on a chart without marks, a console error ...
        path = out / f"{page}{suffix}.png"
        browser.screenshot(path, scale=scale)
        paths.append(path)
        print(f"{path}: {path.stat().st_size / 1e3:.0f} kB", file=sys.stderr, flush=True)
    return paths


def _pipeline_shot(fleet: str, work: Path, out: Path, browser: Browser, scale: float) -> Path:
    """Two days of the simulator's ``fleet`` preset through ``tokenwatt run``; its Data quality page as
    quality-chaos.png (chaos) or quality-clean.png (tiny, a clean fleet)."""
    home = work / f"{fleet}-home"
    _run("pipelines.cli", "simulate", "--fleet", fleet, "--days", "2", "--home", str(home))
    _run("pipelines.cli", "run", "--home", str(home))
    suffix = "-chaos" if fleet == "chaos" else "-clean"
    return shoot(home / "site", out, ["quality"], browser, scale, suffix=suffix)[0]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m dashboards.screenshots", description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots", help="folder for the PNGs")
    ap.add_argument("--home", type=Path, default=None,
                    help="a pipeline-built home: its warehouse.duckdb instead of the site fixture's")
    ap.add_argument("--work", type=Path, default=None, help="keep the warehouses and sites here (default: a temp dir)")
    ap.add_argument("--pages", default=",".join(PAGES), help="comma-separated pages of the fixture site")
    ap.add_argument("--chaos", action="store_true", help="also quality-chaos.png from the chaos preset (pipeline)")
    ap.add_argument("--clean", action="store_true", help="also quality-clean.png from the tiny preset (pipeline)")
    ap.add_argument("--scale", type=float, default=0.75, help="device pixels per CSS pixel in the PNGs")
    args = ap.parse_args(argv)
    pages = [p for p in args.pages.split(",") if p]
    unknown = sorted(set(pages) - set(PAGES))
    if unknown:
        ap.error(f"unknown pages {unknown}; the site's pages are {PAGES}")
    with tempfile.TemporaryDirectory(prefix="tw-shots-") as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        args.out.mkdir(parents=True, exist_ok=True)
        db = args.home / "warehouse.duckdb" if args.home else work / "fixture.duckdb"
        if not args.home:
            _run("tests.site_fixture", str(db))
        elif not db.is_file():
            ap.error(f"{db} does not exist: build the home first (tokenwatt demo --home {args.home})")
        res = build_site(db, work / ("home-site" if args.home else "fixture-site"), images=False)
        if res["errors"]:
            print(f"site sections failed: {res['errors']}", file=sys.stderr)
            return 1
        browser = Browser()
        try:
            shoot(Path(res["out_dir"]), args.out, pages, browser, args.scale)
            for fleet, wanted in (("chaos", args.chaos), ("tiny", args.clean)):
                if wanted:
                    _pipeline_shot(fleet, work, args.out, browser, args.scale)
        finally:
            browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
