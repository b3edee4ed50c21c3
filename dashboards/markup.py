"""The one escaping path of the site: every byte of HTML a page holds goes through here.

Names in the warehouse (nodes, devices, replicas, models, file names, reasons) come from exporters'
labels, fleet files and request logs that we do not control, so they are data, never markup.
The rule is enforced by type, with MarkupSafe's ``Markup`` (a ``str`` subclass that means "already
HTML"):

- ``esc(x)`` turns anything into ``Markup``: a ``Markup`` stays as it is, anything else is escaped
  (``& < > " '``), so the result is safe in text *and* in a quoted attribute value.
- ``h(tag, *children, **attrs)`` builds one element: children and attribute values are escaped unless
  they already are ``Markup``; tag and attribute names must be plain identifiers (never data), and
  event-handler attributes (``on*``) are refused.
- ``Markup("... {} ...").format(x)`` and ``Markup + str`` escape their arguments too.
- ``json_for_script(obj)`` is JSON that cannot end the ``<script>`` element it sits in.

Page code never concatenates a raw ``str`` into HTML: the page blocks (``Html``) accept only
``Markup``, and text fields (``Note``, intros, captions) are escaped when the page is rendered.
"""
from __future__ import annotations

import json
import re
from typing import Iterable

from markupsafe import Markup, escape

__all__ = ["Markup", "esc", "h", "join", "code", "md_code", "json_for_script", "html_table"]

_TAG = re.compile(r"^[a-z][a-z0-9]*$")
_ATTR = re.compile(r"^[a-z][a-z0-9-]*$")
#: elements that have no content and no end tag
_VOID = {"br", "hr", "img", "input", "meta", "link", "col", "wbr"}


def esc(x) -> Markup:
    """``x`` as HTML: escaped text, unless it already is ``Markup``. None reads as an empty string."""
    return Markup("") if x is None else escape(x)


def join(parts: Iterable, sep: str | Markup = "") -> Markup:
    """Concatenate ``parts`` (each escaped unless ``Markup``) with ``sep`` (a constant of the code)."""
    return esc(sep).join(esc(p) for p in parts)


def _attr_name(k: str) -> str:
    name = k.rstrip("_").replace("_", "-")
    if not _ATTR.match(name) or name.startswith("on"):
        raise ValueError(f"attribute name {k!r} is not allowed (plain identifiers only, no event handlers)")
    return name


def h(tag: str, *children, **attrs) -> Markup:
    """One element: ``h("td", text, class_="num")``. ``class_`` is ``class``; ``data_x`` is ``data-x``;
    an attribute that is None or False is left out and True is written bare."""
    if not _TAG.match(tag):
        raise ValueError(f"tag {tag!r} is not allowed")
    out = [f"<{tag}"]
    for k, v in attrs.items():
        if v is None or v is False:
            continue
        name = _attr_name(k)
        out.append(f" {name}" if v is True else f' {name}="{esc(v)}"')
    out.append(">")
    if tag in _VOID:
        if children:
            raise ValueError(f"<{tag}> has no content")
        return Markup("".join(out))
    return Markup("".join(out)) + join(children) + Markup(f"</{tag}>")


def code(text) -> Markup:
    return h("code", text)


def md_code(text) -> Markup:
    """Escape ``text`` and turn `backticks` into <code> (the backticked part is escaped too)."""
    s = str(text)
    parts = re.split(r"`([^`]+)`", s)
    return join(code(p) if i % 2 else p for i, p in enumerate(parts))


def json_for_script(obj) -> Markup:
    """JSON for a ``<script type="application/json">`` element: ``<``, ``>``, ``&`` and the JavaScript
    line separators are written as ``\\uXXXX`` escapes (the same value for ``JSON.parse``), so no
    string in the data can close the element or open a comment."""
    text = json.dumps(obj, separators=(",", ":"), allow_nan=False, ensure_ascii=False)
    for ch, rep in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"),
                    ("\u2029", "\\u2029")):
        text = text.replace(ch, rep)
    return Markup(text)


def html_table(headers: list[str], rows: list[list], *, caption: str = "", num_cols: set[int] | None = None,
               swatches: dict[int, list[str]] | None = None, cls: str = "tw-table", total_last: bool = False,
               row_attrs: list[dict] | None = None) -> Markup:
    """A small HTML table; cells are escaped (a cell may be Markup); ``num_cols`` right-aligned; ``swatches``
    puts a colour chip before the cell text of column i (list of colours by row); ``row_attrs`` adds
    attributes (e.g. ``data_chip``) to each body row."""
    num_cols = num_cols or set()
    head = h("thead", h("tr", *[h("th", t, class_="num" if i in num_cols else None, scope="col")
                                for i, t in enumerate(headers)]))
    body = []
    for r, row in enumerate(rows):
        cells = []
        for i, v in enumerate(row):
            sw = (h("span", class_="sw", style=f"background:{swatches[i][r]}")
                  if swatches and i in swatches and swatches[i][r] else "")
            cells.append(h("td", sw, v if isinstance(v, Markup) else str(v),
                           class_="num" if i in num_cols else None))
        attrs = dict(row_attrs[r]) if row_attrs else {}
        if total_last and r == len(rows) - 1:
            attrs["class_"] = "total"
        body.append(h("tr", *cells, **attrs))
    return h("table", h("caption", caption) if caption else "", head, h("tbody", *body), class_=cls)
