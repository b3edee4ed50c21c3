"""What a block on a page with the filter bar does not follow, and the plain line that says so.

A chart follows a filter when its spec reads the filter's signal (``chip_filter`` puts them there);
a live block when its data has the column site.js filters on; a static table follows none. Under a
block that ignores one of the page's filters the site writes e.g. "Whole period, all models: does
not follow the date and model filters." (``data-ignores`` names them for scripts and tests).
"""
from __future__ import annotations

import json
import re

from dashboards.markup import Markup, h
from dashboards.pages._core import SIG_CHIP, SIG_FROM, SIG_MODEL, SIG_VENDOR

#: the filters a chart can follow, and the signals that show it does (chip_filter puts them in the spec)
FILTER_SIGNALS = {"chip": (SIG_CHIP, SIG_VENDOR), "model": (SIG_MODEL,), "dates": (SIG_FROM,)}
#: how a block that ignores a filter says so
SCOPE_WORDS = {"dates": "whole period", "chip": "all chips", "model": "all models"}


def follows(spec: dict) -> set[str]:
    """The filters (``chip``, ``model``, ``dates``) whose signals the chart's spec reads."""
    # the data (names!) and the signal declarations themselves are left out: only expressions count
    text = json.dumps({k: v for k, v in spec.items() if k not in ("params", "config", "datasets", "data")})
    return {f for f, sigs in FILTER_SIGNALS.items() if any(re.search(rf"\b{s}\b", text) for s in sigs)}


def scope_line(ignored: list[str]) -> Markup | str:
    """A plain line under a block that does not follow some filter: "Whole period, all models: does not
    follow the date and model filters." (empty when it follows them all)"""
    if not ignored:
        return ""
    words = ", ".join(SCOPE_WORDS[f] for f in ignored)
    names = {"dates": "date", "chip": "chip", "model": "model"}
    nf = [names[f] for f in ignored]
    which = nf[0] if len(nf) == 1 else ", ".join(nf[:-1]) + " and " + nf[-1]
    return h("p", f"{words[0].upper()}{words[1:]}: does not follow the {which} filter{'s' if len(nf) > 1 else ''}.",
             class_="scope", data_ignores=" ".join(ignored))


def ignored_filters(active: list[str], follow: set[str]) -> list[str]:
    """The page's filters (``active``) that a block following ``follow`` ignores, in display order."""
    return [f for f in ("dates", "chip", "model") if f in active and f not in follow]
