"""One look for every chart of the site: fonts, sizes and a fixed, colour-blind-safe colour per chip.

Colours come from the Okabe-Ito palette (Okabe & Ito 2008, "Color Universal Design"), which stays
distinguishable for the common forms of colour-vision deficiency. Each chip (and its vendor) keeps
the same colour on every page: the chip and vendor scales below are the only place that maps them,
and the site builds one domain from the chips in the warehouse and passes it to every chart.
Non-chip categories (cost basis, energy component, scenario, ...) use the Okabe-Ito colours that no
chip uses, so a colour never means "a chip" on one chart and something else on the next.
"""
from __future__ import annotations

from collections.abc import Iterable

import altair as alt

FONT = "Liberation Sans, Arial, Helvetica, sans-serif"

OKABE_ITO = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "bluish_green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish_purple": "#CC79A7",
}

#: fixed colour per chip of the catalog (collectors/catalog/chips.yaml), in display order
CHIP_COLORS: dict[str, str] = {
    "nvidia-h100-sxm": OKABE_ITO["bluish_green"],
    "nvidia-h200": OKABE_ITO["sky_blue"],
    "amd-mi300x": OKABE_ITO["vermillion"],
    "custom-asic": OKABE_ITO["blue"],
}
#: a vendor takes the colour of its (first) chip; "all" is the whole fleet
VENDOR_COLORS: dict[str, str] = {
    "nvidia": OKABE_ITO["bluish_green"],
    "amd": OKABE_ITO["vermillion"],
    "custom": OKABE_ITO["blue"],
    "all": "#444444",
}
#: for chips/vendors not in the catalog above (assigned in name order, after the known ones)
SPARE_COLORS = ["#CC79A7", "#E69F00", "#000000", "#F0E442", "#999999", "#882255", "#44AA99", "#117733"]

#: categorical colours for things that are not chips (never a chip colour)
SERIES = [OKABE_ITO["orange"], OKABE_ITO["reddish_purple"], "#333333", "#999999", OKABE_ITO["yellow"],
          OKABE_ITO["sky_blue"], OKABE_ITO["bluish_green"]]
BASIS_COLORS = {"allocation": OKABE_ITO["orange"], "usage": OKABE_ITO["reddish_purple"]}
COMPONENT_COLORS = {
    "attributed active": OKABE_ITO["orange"],
    "shared idle": OKABE_ITO["reddish_purple"],
    "unused capacity": "#BBBBBB",
    "residual": "#333333",
}
#: sequential schemes that are perceptually uniform and colour-blind safe
SEQ_POWER = "viridis"
SEQ_UTIL = "cividis"
SEQ_COUNT = "oranges"

#: chart widths (plot area, px): the page is ~1040 px wide with two charts per row when "half"
FULL_W = 900
HALF_W = 390
HEIGHT = 260


class Palette:
    """The chip and vendor colour scales for one site build (one domain, used on every chart)."""

    def __init__(self, chips: Iterable[str], vendors: Iterable[str] = ()) -> None:
        chips = set(chips)
        vendors = set(vendors)
        known = [c for c in CHIP_COLORS if c in chips]
        extra = sorted(chips - set(CHIP_COLORS))
        self.chips = known + extra
        self.chip_range = [CHIP_COLORS[c] for c in known] + [
            SPARE_COLORS[i % len(SPARE_COLORS)] for i in range(len(extra))]
        kv = [v for v in VENDOR_COLORS if v in vendors and v != "all"]
        ev = sorted(vendors - set(VENDOR_COLORS))
        self.vendors = kv + ev
        self.vendor_range = [VENDOR_COLORS[v] for v in kv] + [
            SPARE_COLORS[(len(extra) + i) % len(SPARE_COLORS)] for i in range(len(ev))]

    def chip_scale(self) -> alt.Scale:
        return alt.Scale(domain=self.chips, range=self.chip_range)

    def vendor_scale(self, with_fleet: bool = False) -> alt.Scale:
        dom, rng = list(self.vendors), list(self.vendor_range)
        if with_fleet:
            dom.append("all")
            rng.append(VENDOR_COLORS["all"])
        return alt.Scale(domain=dom, range=rng)

    def chip_color(self, title: str = "Chip", legend: bool = True, **kw) -> alt.Color:
        return alt.Color("chip:N", title=title, scale=self.chip_scale(),
                         legend=alt.Legend(orient="top") if legend else None, **kw)

    def vendor_color(self, title: str = "Vendor", with_fleet: bool = False, **kw) -> alt.Color:
        return alt.Color("vendor:N", title=title, scale=self.vendor_scale(with_fleet),
                         legend=alt.Legend(orient="top"), **kw)

    def chip_hex(self, chip: str) -> str:
        return self.chip_range[self.chips.index(chip)] if chip in self.chips else "#777777"

    def vendor_hex(self, vendor: str) -> str:
        if vendor in self.vendors:
            return self.vendor_range[self.vendors.index(vendor)]
        return VENDOR_COLORS.get(vendor, "#777777")


def ordinal_scale(colors: dict[str, str], present: Iterable[str]) -> alt.Scale:
    """A fixed categorical scale for non-chip categories, limited to the values present."""
    present = list(dict.fromkeys(present))
    dom = [k for k in colors if k in present] + [p for p in present if p not in colors]
    rng = [colors[k] for k in colors if k in present] + [
        SERIES[i % len(SERIES)] for i, _ in enumerate(p for p in present if p not in colors)]
    return alt.Scale(domain=dom, range=rng)


def vl_config() -> dict:
    """Vega-Lite ``config`` put on every chart (browser and SVG export alike)."""
    axis = {
        "labelFont": FONT, "titleFont": FONT, "labelFontSize": 12, "titleFontSize": 12,
        "titleFontWeight": "normal", "titleColor": "#333333", "labelColor": "#333333",
        "gridColor": "#e8e8e8", "domainColor": "#888888", "tickColor": "#888888",
        "labelOverlap": True, "titlePadding": 8,
    }
    return {
        "font": FONT,
        "background": "#ffffff",
        "padding": 8,
        "view": {"stroke": None, "continuousWidth": HALF_W, "continuousHeight": HEIGHT},
        "title": {"font": FONT, "fontSize": 15, "fontWeight": "bold", "anchor": "start", "color": "#1a1a1a",
                  "subtitleFont": FONT, "subtitleFontSize": 12, "subtitleColor": "#555555", "offset": 12},
        "axis": axis,
        "axisBand": {"grid": False},
        "header": {"labelFont": FONT, "titleFont": FONT, "labelFontSize": 13, "titleFontSize": 12,
                   "labelFontWeight": "bold"},
        "legend": {"labelFont": FONT, "titleFont": FONT, "labelFontSize": 12, "titleFontSize": 12,
                   "titleFontWeight": "normal", "symbolSize": 120, "symbolOpacity": 1, "labelLimit": 260},
        "range": {"category": SERIES},
        "line": {"strokeWidth": 2},
        "point": {"size": 50},
        "text": {"font": FONT, "fontSize": 11},
    }
