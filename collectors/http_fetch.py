"""HTTP GET with a deadline for the whole request and a size cap (the scrapers' one fetch).

``urllib``'s timeout bounds each socket read, so a server that sends a byte a second holds the
caller for as long as it likes; here a watchdog shuts the socket at the deadline.
"""
from __future__ import annotations

import http.client
import socket
import threading
import time
import urllib.parse

#: largest response accepted (dcgm-exporter on 8 GPUs is ~0.1 MB of text)
DEFAULT_MAX_BYTES = 32 * 1024 * 1024


class ScrapeTooLarge(ValueError):
    """A response larger than the backend's size cap."""


class ScrapeDeadline(TimeoutError):
    """A scrape that did not finish (headers and whole body) within its deadline."""


def fetch_text(url: str, timeout_s: float = 2.0, max_bytes: int = DEFAULT_MAX_BYTES,
               accept: str = "text/plain;version=0.0.4") -> str:
    """GET ``url`` (by default as Prometheus text exposition 0.0.4), whole within ``timeout_s``.

    The deadline covers the whole request (connect, headers, body), not one socket read: a
    watchdog shuts the socket at the deadline, so a server that trickles bytes cannot hold the
    caller longer. A body over ``max_bytes`` raises :class:`ScrapeTooLarge`.
    """
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {url!r}")
    deadline = time.monotonic() + timeout_s
    cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    conn = cls(parts.hostname, parts.port, timeout=timeout_s)
    expired = threading.Event()

    def kill() -> None:
        expired.set()
        sock = conn.sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    watchdog = threading.Timer(timeout_s, kill)
    watchdog.daemon = True
    watchdog.start()
    try:
        conn.request("GET", (parts.path or "/") + (f"?{parts.query}" if parts.query else ""),
                     headers={"Accept": accept, "Accept-Encoding": "identity"})
        response = conn.getresponse()
        if response.status != 200:
            raise OSError(f"HTTP {response.status} {response.reason}")
        length = response.getheader("Content-Length")
        if length is not None and length.isdigit() and int(length) > max_bytes:
            raise ScrapeTooLarge(f"Content-Length {length} over the {max_bytes} byte cap")
        chunks: list[bytes] = []
        size = 0
        while True:
            if time.monotonic() >= deadline:
                raise ScrapeDeadline(f"no whole response within {timeout_s:g} s")
            chunk = response.read1(65536)
            if not chunk:
                break
            size += len(chunk)
            if size > max_bytes:
                raise ScrapeTooLarge(f"response over the {max_bytes} byte cap")
            chunks.append(chunk)
        if expired.is_set():
            raise ScrapeDeadline(f"no whole response within {timeout_s:g} s")
        charset = response.headers.get_content_charset() or "utf-8"
        return b"".join(chunks).decode(charset, "replace")
    except (OSError, http.client.HTTPException) as exc:
        if expired.is_set() and not isinstance(exc, ScrapeDeadline):
            raise ScrapeDeadline(f"no whole response within {timeout_s:g} s") from None
        if isinstance(exc, http.client.HTTPException):
            raise OSError(f"{type(exc).__name__}: {exc}") from None
        raise
    finally:
        watchdog.cancel()
        conn.close()
