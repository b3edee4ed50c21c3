"""What vl-convert makes for the site: the one local copy of vega, vega-lite and vega-embed
(assets/vega-bundle.js, reused from the previous build when the versions match) and each chart as
an image for reports (charts/<chart>.svg, or .png for heavy charts)."""
from __future__ import annotations

import logging
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import vl_convert as vlc

log = logging.getLogger("dashboards")

BUNDLE = "vega-bundle.js"


def _bundle_stamp() -> str:
    return (f"/* vega {vlc.get_vega_version()}, vega-lite {_vl_version()}, vega-embed {vlc.get_vega_embed_version()}"
            f" - bundled by vl-convert-python */\n")


def _vl_version() -> str:
    import altair as alt
    return alt.VEGALITE_VERSION


def _vl_convert_version() -> str:
    """vl-convert's name for the Vega-Lite version Altair writes (e.g. 'v6_4')."""
    major, minor = _vl_version().split(".")[:2]
    return f"v{major}_{minor}"


_BUNDLE_CACHE: dict[str, str] = {}


def write_bundle(dest: Path, previous: Path | None) -> None:
    """One local copy of vega, vega-lite and vega-embed; reused from the previous build when unchanged."""
    stamp = _bundle_stamp()
    if previous is not None and previous.is_file():
        with previous.open("r", encoding="utf-8") as fh:
            if fh.readline() == stamp:
                shutil.copyfile(previous, dest)
                return
    if stamp not in _BUNDLE_CACHE:
        _BUNDLE_CACHE[stamp] = stamp + vlc.javascript_bundle(vl_version=_vl_convert_version())
    dest.write_text(_BUNDLE_CACHE[stamp], encoding="utf-8")


def title_text(spec: dict) -> str:
    """The chart's title as one line (its aria-label and the name in warnings)."""
    t = spec.get("title")
    if isinstance(t, dict):
        t = t.get("text", "")
    if isinstance(t, list):
        t = " ".join(t)
    return str(t or "chart")


#: a chart whose SVG would be bigger than this (a heatmap of thousands of cells) is exported as PNG
SVG_MAX_BYTES = 600_000


def _image(spec: dict, fmt: str = "svg") -> tuple[str, bytes] | None:
    """The chart as an image for reports: SVG, or a PNG when asked for or when the SVG would be heavy.

    None when the headless renderer cannot draw it: the page and its CSV still ship; only the image
    link is left out, and a warning is logged (the same spec most likely fails in the browser too).
    """
    try:
        return _image_or_raise(spec, fmt)
    except ValueError:
        try:
            return _image_or_raise(spec, "png")
        except ValueError as exc:
            log.warning("chart %r: no image for reports: %s", title_text(spec), str(exc).splitlines()[0][:200])
            return None


def _image_or_raise(spec: dict, fmt: str) -> tuple[str, bytes]:
    if fmt == "svg":
        data = vlc.vegalite_to_svg(spec, vl_version=_vl_convert_version()).encode("utf-8")
        if len(data) <= SVG_MAX_BYTES:
            return "svg", data
    return "png", bytes(vlc.vegalite_to_png(spec, vl_version=_vl_convert_version(), scale=1))


def write_images(charts_dir: Path, all_charts: list, specs: dict) -> dict[str, str]:
    """A static image of every chart (in parallel); chart name -> file extension."""
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 2)) as ex:
        imgs = list(ex.map(lambda c: _image(specs[c.name], c.image), all_charts))
    image_ext: dict[str, str] = {}
    for c, img in zip(all_charts, imgs):
        if img is not None:
            ext, data = img
            (charts_dir / f"{c.name}.{ext}").write_bytes(data)
            image_ext[c.name] = ext
    return image_ext
