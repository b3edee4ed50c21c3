"""The identifier policy: one rule for node, device, replica, model, chip and task names from
every source (exporter labels, fleet files, request logs, OTLP spans, file names).

A name from outside is data. It is kept as given when it is a string of 1 to ``MAX_LEN``
characters with no control characters and no unpaired surrogates (text that is not valid UTF-8);
anything else is refused with a reason, which the caller turns into a quarantine row or a rejected
record naming the file, row and field. Names are never globbed, formatted into SQL or written
into HTML unescaped (see dashboards/pages/_core.py for the one escaping path).

Where a name must become a path component (spool partitions, file names), :func:`path_component`
maps it, the same way for the writer and the scanner: characters other than ``A-Z a-z 0-9 _ . -``
become ``_``, a leading ``.`` becomes ``_`` (the scanner skips hidden files), and long names are
cut and suffixed with a digest so two names do not meet in one path by truncation.
"""
from __future__ import annotations

import hashlib
import re
import unicodedata

#: longest identifier kept, in characters
MAX_LEN = 200
#: longest path component written, in characters
MAX_COMPONENT = 120

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_UNSAFE_PATH = re.compile(r"[^A-Za-z0-9_.-]")


class InvalidName(ValueError):
    """A name that cannot be kept; ``reason`` says why in a few words."""

    def __init__(self, kind: str, value: object, reason: str):
        self.kind, self.value, self.reason = kind, value, reason
        super().__init__(f"invalid {kind} name {value!r:.80}: {reason}")


def name_problem(value: object) -> str | None:
    """Why ``value`` cannot be an identifier, or None when it can."""
    if not isinstance(value, str):
        return f"not a string ({type(value).__name__})"
    if not value:
        return "empty"
    if len(value) > MAX_LEN:
        return f"longer than {MAX_LEN} characters"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "not valid UTF-8"
    if _CONTROL.search(value):
        return "contains a control character"
    if value != value.strip():
        return "leading or trailing whitespace"
    return None


def clean_identifier(kind: str, value: object) -> str:
    """``value`` as an identifier of ``kind`` (NFC-normalised), or :class:`InvalidName`."""
    problem = name_problem(value)
    if problem:
        raise InvalidName(kind, value, problem)
    return unicodedata.normalize("NFC", value)  # type: ignore[arg-type]


def path_component(value: str) -> str:
    """A file or directory name for ``value`` that cannot escape its directory or hide itself."""
    safe = _UNSAFE_PATH.sub("_", value) or "_"
    if safe.startswith("."):
        safe = "_" + safe[1:]
    if len(safe) > MAX_COMPONENT:
        digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:12]
        safe = f"{safe[:MAX_COMPONENT - 13]}-{digest}"
    return safe
