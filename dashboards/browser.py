"""Headless Chromium for the site: the driver behind the browser tests and ``dashboards.screenshots``.

Debian's ``chromium`` and ``chromium-driver`` (/usr/bin/chromium, /usr/bin/chromedriver; override with
TOKENWATT_CHROMIUM / TOKENWATT_CHROMEDRIVER), driven by selenium over chromedriver; nothing is
downloaded, the network is off-limits (every URL a page requested is logged and checked). selenium
is imported only when a :class:`Browser` starts; a missing one is a clear error.
"""
from __future__ import annotations

import base64
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

CHROMIUM = os.environ.get("TOKENWATT_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("TOKENWATT_CHROMEDRIVER", "/usr/bin/chromedriver")
PAGES = ["index", "energy", "cost", "fleet", "forecast", "quality"]
LOCAL_SCHEMES = ("file:", "data:", "blob:", "about:", "chrome:", "chrome-untrusted:", "chrome-extension:", "devtools:",
                 "chrome-error:")
WIDTH = 1280

# JS: per chart container, its data-mark elements (axes, legends, titles excluded) and how many of them
# have a visible size: 2-D marks (bars, cells, areas, symbols) need width and height, lines and rules one
GEOMETRY = """
const out = {};
document.querySelectorAll('div.vis').forEach(el => {
  const svg = el.querySelector('svg');
  const r = {marks: 0, visible: 0, rects: 0, rects_visible: 0};
  if (!svg) { r.marks = -1; out[el.id] = r; return; }
  svg.querySelectorAll('g.role-mark:not(.mark-group):not(.mark-text)').forEach(g => {
    const oneD = g.classList.contains('mark-line') || g.classList.contains('mark-rule') ||
                 g.classList.contains('mark-trail');
    const isRect = g.classList.contains('mark-rect');
    for (const m of g.children) {
      if (!['path', 'line', 'rect'].includes(m.tagName)) continue;
      r.marks += 1; if (isRect) r.rects += 1;
      const b = m.getBBox();
      const ok = oneD ? (b.width > 0.5 || b.height > 0.5) : (b.width > 0.5 && b.height > 0.5);
      if (ok) { r.visible += 1; if (isRect) r.rects_visible += 1; }
    }
  });
  out[el.id] = r;
});
return out;
"""


def have_browser() -> bool:
    """selenium importable and Debian's chromium and chromedriver present."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return False
    return Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()


class Browser:
    """Headless Chromium over chromedriver with console and network logging, fully offline."""

    def __init__(self, width: int = WIDTH, height: int = 1000) -> None:
        try:
            from selenium import webdriver
            from selenium.webdriver.chrome.service import Service
        except ImportError as exc:
            raise RuntimeError("the site's browser checks need selenium (pip install -e '.[test]') and Debian's "
                               "chromium and chromium-driver (make chromium)") from exc
        for exe in (CHROMIUM, CHROMEDRIVER):
            if not Path(exe).exists():
                raise RuntimeError(f"{exe} is missing: install Debian's chromium and chromium-driver (make chromium)")

        self.profile = tempfile.mkdtemp(prefix="tw-chromium-")
        opts = webdriver.ChromeOptions()
        opts.binary_location = CHROMIUM
        for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-default-apps", "--disable-extensions", "--disable-dev-shm-usage",
                  "--no-default-browser-check", "--metrics-recording-only", "--mute-audio",
                  "--disable-features=Translate,OptimizationHints,MediaRouter,AutofillServerCommunication",
                  "--hide-scrollbars", "--force-device-scale-factor=1", "--lang=en-US",
                  f"--user-data-dir={self.profile}", f"--window-size={width},{height}"):
            opts.add_argument(a)
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
        self.driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=opts)
        self.driver.set_page_load_timeout(60)
        self.driver.execute_cdp_cmd("Network.enable", {})
        self.width = width

    def close(self) -> None:
        try:
            self.driver.quit()
        finally:
            shutil.rmtree(self.profile, ignore_errors=True)

    def open(self, url: str, timeout: float = 60) -> dict:
        """Load ``url``, wait until every chart has been embedded; returns the page's TW status."""
        self.drain()
        self.driver.get(url)
        return self.wait_ready(timeout)

    def wait_ready(self, timeout: float = 60) -> dict:
        deadline = time.monotonic() + timeout
        state = None
        while time.monotonic() < deadline:
            state = self.driver.execute_script(
                "return window.TW ? {ready: TW.ready, total: TW.total, done: TW.done, failed: TW.failed} : null")
            if state and state["ready"]:
                # let the SVG renderer finish (vega renders after the dataflow run)
                self.driver.execute_script("return new Promise(r => requestAnimationFrame(() => r(1)))")
                return state
            time.sleep(0.1)
        raise TimeoutError(f"charts not ready after {timeout}s: {state}")

    def geometry(self) -> dict[str, dict]:
        return self.driver.execute_script(GEOMETRY)

    def marks(self) -> dict[str, int]:
        """Visible data marks per chart."""
        return {k: v["visible"] for k, v in self.geometry().items()}

    def drain(self) -> tuple[list[dict], list[str]]:
        """Console entries and requested URLs since the last call."""
        console = self.driver.get_log("browser")
        urls = []
        for entry in self.driver.get_log("performance"):
            msg = json.loads(entry["message"])["message"]
            m, p = msg.get("method", ""), msg.get("params", {})
            if m == "Network.requestWillBeSent":
                urls.append(p["request"]["url"])
            elif m == "Network.webSocketCreated":
                urls.append(p["url"])
        return console, urls

    def screenshot(self, path: Path, scale: float = 1.0) -> None:
        """The whole page (not only the window) as a PNG; ``scale`` < 1 for a smaller file."""
        h = self.driver.execute_script("return Math.ceil(document.documentElement.scrollHeight)")
        res = self.driver.execute_cdp_cmd("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": self.width, "height": h, "scale": scale}})
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(res["data"]))


def problems(console: list[dict]) -> list[str]:
    """Console errors, and warnings from Vega (which mean a chart is not what was meant)."""
    bad = []
    for e in console:
        msg = e.get("message", "")
        if e.get("level") == "SEVERE" or ("WARN" in msg and e.get("level") == "WARNING"):
            bad.append(f"{e.get('level')}: {msg}")
    return bad


def remote(urls: list[str]) -> list[str]:
    return [u for u in urls if not u.startswith(LOCAL_SCHEMES)]


def check_page(browser: Browser, site: Path, page: str, shots: list[Path] = ()) -> dict:
    """Open one page and check it; returns {marks, state}. Raises AssertionError on a problem."""
    url = (site / f"{page}.html").resolve().as_uri()
    state = browser.open(url)
    geo = browser.geometry()
    marks = {k: v["visible"] for k, v in geo.items()}
    for d in shots:
        browser.screenshot(Path(d) / f"{page}.png")
    console, urls = browser.drain()
    assert not state["failed"], f"{page}: charts failed: {state['failed']}"
    assert state["done"] == state["total"] == len(marks), f"{page}: {state}, containers {len(marks)}"
    empty = {k: v for k, v in geo.items() if v["visible"] <= 0}
    assert not empty, f"{page}: charts without visible marks: {empty}"
    flat = {k: v for k, v in geo.items() if v["rects"] and not v["rects_visible"]}
    assert not flat, f"{page}: bars/cells drawn with no area: {flat}"
    assert not problems(console), f"{page}: console: {problems(console)}"
    assert urls, f"{page}: no requests were logged at all (is the performance log on?)"
    assert not remote(urls), f"{page}: requests left the machine: {remote(urls)}"
    return {"marks": marks, "state": state}
