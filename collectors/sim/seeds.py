"""Seeds that are the same in every process: Python's ``hash()`` of a str is salted per process, so
nothing that ends up in a file may be drawn from it."""
from __future__ import annotations

import hashlib


def stable_digest(*parts: object) -> int:
    """A 64-bit number from ``parts`` (their ``str``), the same in every process and on every machine."""
    text = "\x1f".join(str(p) for p in parts).encode("utf-8", "surrogatepass")
    return int.from_bytes(hashlib.sha256(text).digest()[:8], "big")
