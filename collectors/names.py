"""The identifier policy: one rule for node, device, replica, model, chip and task names from
every source (exporter labels, fleet files, request logs, OTLP spans, file names).

A name from outside is data. It is kept as given when it is a string of 1 to ``MAX_LEN``
characters with no control characters and no unpaired surrogates (text that is not valid UTF-8);
anything else is refused with a reason, which the caller turns into a quarantine row or a rejected
record naming the file, row and field. Names are never globbed, formatted into SQL or written
into HTML unescaped (dashboards/markup.py is the one escaping path).

Where a name must become a path component (spool partitions, file names), :func:`path_component`
maps it, the same way for the writer and the scanner: characters other than ``A-Z a-z 0-9 _ . -``
become ``_``, a leading ``.`` becomes ``_`` (the scanner skips hidden files), and long names are
cut and suffixed with a digest so two names do not meet in one path by truncation.
"""
from __future__ import annotations

import hashlib
import ipaddress
import re
import unicodedata
from pathlib import Path
from typing import Mapping

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


# -- node identity ---------------------------------------------------------------------------------


class HostAliasError(ValueError):
    """A host alias file that cannot be used; the message names the file and the field."""


def host_name(value: str, aliases: Mapping[str, str] | None = None) -> str:
    """The one node name for a host, whichever source saw it.

    Exporters label devices with a host's FQDN (``ip-100-64-171-120.ec2.internal``), request
    telemetry with its short name (``gpu-7``), some sources in upper case. The name is lower-cased,
    a trailing dot dropped, and a DNS name cut to its first label (an IP address is kept whole);
    then ``aliases`` (from :func:`load_host_aliases`) maps the full name or the short one to the
    node name the fleet uses. Apply it to every source: the Prometheus backend, the OTLP receiver,
    the agent's ``--node`` and the request log.
    """
    full = value.strip().rstrip(".").lower()
    try:
        ipaddress.ip_address(full.strip("[]"))
        short = full.strip("[]")
    except ValueError:
        short = full.split(".", 1)[0]
    if aliases:
        for key in (full, short):
            if key in aliases:
                return aliases[key]
    return short or full


def load_host_aliases(path: str | Path) -> dict[str, str]:
    """``{seen name: node}`` from a YAML file ``aliases: {ip-100-64-171-120.ec2.internal: gpu-7}``.

    Keys are normalised like :func:`host_name` (lower case; a DNS name may be given whole or
    short) and values must be valid identifiers; a key given twice after normalisation is an error.
    """
    from collectors.config import fields, load_yaml_mapping

    data = load_yaml_mapping(path, HostAliasError)
    fields(path, "", data, ("aliases",), ("aliases",), error=HostAliasError)
    table = data["aliases"] or {}
    if not isinstance(table, dict):
        raise HostAliasError(f"{path}: field 'aliases' must be a mapping of host name to node name")
    out: dict[str, str] = {}
    for key, node in table.items():
        if not isinstance(key, str) or name_problem(key) or not isinstance(node, str) or name_problem(node):
            raise HostAliasError(f"{path}: field 'aliases.{key}': host and node must be names, got {node!r}")
        k = key.strip().rstrip(".").lower()
        if k in out:
            raise HostAliasError(f"{path}: field 'aliases.{key}': {k!r} is given twice")
        out[k] = node
    return out
