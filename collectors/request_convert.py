"""``convert_jsonl``: a request-log ``.jsonl`` file -> REQUESTS files in the spool, line by line; a
line that cannot become a row is reported with file, line and field and the next line goes on."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

from collectors.names import HostAliasError, load_host_aliases
from collectors.rejects import Reject, write_rejects
from collectors.request_record import RequestLogError, record_to_row
from collectors.request_spool import write_requests
from collectors.spool import safe_name


@dataclass
class ConvertResult:
    """What :func:`convert_jsonl` did."""

    rows_written: int
    bad_lines: list[tuple[int, str]]  # (1-based line number, "file:line: field 'x': reason")
    files: list[Path]
    rejects_file: Path | None = None


def _lines(path: Path) -> Iterable[tuple[int, str | None, str]]:
    """(line number, text or None, why not) for every line; a line that is not UTF-8 has no text."""
    with open(path, "rb") as fh:
        for line_no, raw in enumerate(fh, start=1):
            try:
                yield line_no, raw.decode("utf-8"), ""
            except UnicodeDecodeError as exc:
                yield line_no, None, f"not valid UTF-8 at byte {exc.start}"


def _parse_line(text: str, node: str | None, aliases: Mapping[str, str] | None = None) -> dict[str, Any]:
    try:
        record = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RequestLogError(f"invalid JSON: {exc.msg}") from None
    except (RecursionError, ValueError) as exc:
        raise RequestLogError(f"invalid JSON: {type(exc).__name__}") from None
    return record_to_row(record, node, aliases)


def convert_jsonl(
    path: Path | str, spool: Path | str, node: str | None = None, batch_rows: int = 200_000,
    aliases: Mapping[str, str] | None = None,
) -> ConvertResult:
    """Convert a request-log ``.jsonl`` file into REQUESTS files in the spool.

    A line that cannot become a row (not UTF-8, not JSON, a field refused by
    collectors/request_record.py) is skipped and reported with the file, line and field, and kept in
    ``<spool>/rejects/requests/``; conversion goes on with the next line. Blank lines are ignored.
    ``node`` fills records without one; every node goes through :func:`collectors.names.host_name`
    with ``aliases`` (FQDN -> short name, then the alias table). File names are ``<stem>-<content hash>-<part>``, so a rerun
    on the same file overwrites rather than duplicates.
    """
    path = Path(path)
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    prefix = f"{safe_name(path.stem)}-{digest.hexdigest()[:12]}"
    bad: list[tuple[int, str]] = []
    rejects: list[Reject] = []
    files: list[Path] = []
    batch: list[dict[str, Any]] = []
    written = 0
    part = 0

    def refuse(line_no: int, fld: str, reason: str, text: str | None) -> None:
        where = f"{path.name}:{line_no}: " + (f"field '{fld}': " if fld else "")
        bad.append((line_no, where + reason))
        rejects.append(Reject(fld, where + reason, {"line": line_no, "text": (text or "")[:2000]}))

    def write_batch() -> None:
        nonlocal part, written
        if batch:
            result = write_requests(spool, batch, f"{prefix}-{part:04d}")
            if result.unwritten:
                raise result.error or OSError("request file not written")
            for r in result.rejects:
                refuse(0, r.field, r.reason, json.dumps(r.row, default=str))
            files.extend(result.files)
            written += len(batch) - len(result.rejects)
            part += 1
            batch.clear()

    for line_no, text, why in _lines(path):
        if text is None:
            refuse(line_no, "", why, None)
            continue
        if not text.strip():
            continue
        try:
            batch.append(_parse_line(text, node, aliases))
        except RequestLogError as exc:
            refuse(line_no, exc.field, str(exc), text)
        if len(batch) >= batch_rows:
            write_batch()
    write_batch()
    rejects_file = write_rejects(spool, "requests", prefix, rejects)
    return ConvertResult(rows_written=written, bad_lines=bad, files=files, rejects_file=rejects_file)


def main(argv: list[str] | None = None) -> int:
    """``python -m collectors.request_convert FILE --spool DIR [--node NAME]``: convert one request log.

    Prints one line per refused line (file:line: field: reason); exit status 0 when every line was
    converted, 1 when some were refused, 2 when the file cannot be read.
    """
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="python -m collectors.request_convert",
                                     description="Convert a request-log .jsonl file into the spool.")
    parser.add_argument("file", type=Path)
    parser.add_argument("--spool", type=Path, required=True)
    parser.add_argument("--node", default=None, help="node for records without one")
    parser.add_argument("--aliases", type=Path, default=None, help="host alias YAML (aliases: {fqdn-or-name: node})")
    args = parser.parse_args(argv)
    try:
        aliases = load_host_aliases(args.aliases) if args.aliases else None
    except HostAliasError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        result = convert_jsonl(args.file, args.spool, node=args.node, aliases=aliases)
    except OSError as exc:
        print(f"error: {args.file}: {exc}", file=sys.stderr)
        return 2
    for _line_no, reason in result.bad_lines:
        print(f"rejected: {reason}", file=sys.stderr)
    print(json.dumps({"rows_written": result.rows_written, "rejected_lines": len(result.bad_lines),
                      "files": len(result.files),
                      "rejects_file": str(result.rejects_file) if result.rejects_file else None}))
    return 1 if result.bad_lines else 0


if __name__ == "__main__":
    raise SystemExit(main())
