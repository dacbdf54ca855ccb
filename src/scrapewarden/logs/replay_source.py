"""Access logs as requests for a policy replay: every request, the allowed ones included.

The event trail holds refusals (and a sample of allowed traffic); an access log holds all
traffic. This reads one or more logs (combined, common or JSON lines, plain or gzip) with the
analyzer's line parsers (:func:`.fallback.parse_line`, :func:`.fallback.parse_json_line`, the
same as ``scrapewarden watch``), keeps the last ``hours`` before the newest line, and hands the
requests, oldest first, to :func:`scrapewarden.core.replay.replay`. A line neither parser can
read is counted (with a few examples, cut short) and skipped, never fatal.

The window ends at the newest line, not at the wall clock: a log copied from elsewhere (or
last week's) still replays. At most :data:`MAX_REQUESTS` requests are kept (the newest); the
result says when more fell in the window.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..core.facts import RequestFacts
from .fallback import LineParser, Row
from .formats import open_text
from .live import facts_from_row

MAX_REQUESTS = 100_000
"""Requests replayed at most (two engines decide each; about a second per 10 000 here)."""
BAD_EXAMPLES = 5
EXAMPLE_CHARS = 200


@dataclass(slots=True)
class LogRequests:
    requests: list[RequestFacts] = field(default_factory=list)
    """The window's requests, oldest first."""
    lines: int = 0
    """Non-empty lines read."""
    bad_lines: int = 0
    """Lines no parser could read (skipped)."""
    bad_examples: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    """Files that could not be opened or read, with why."""
    first_ts: float | None = None
    last_ts: float | None = None
    """The window replayed: its first and last request's time."""
    in_window: int = 0
    """Requests replayed."""
    truncated: bool = False
    """More requests fell in the window than :data:`MAX_REQUESTS`: the newest were kept."""


def _rows(path: Path, out: LogRequests) -> Iterable[Row]:
    parse = LineParser()
    handle = open_text(path)
    try:
        for text in handle:
            if not text.strip():
                continue
            out.lines += 1
            try:
                row = parse(text)
            except (ValueError, OverflowError):  # belt and braces: a line must never stop the read
                row = None
            if row is None:
                out.bad_lines += 1
                if len(out.bad_examples) < BAD_EXAMPLES:
                    out.bad_examples.append(text.rstrip("\r\n")[:EXAMPLE_CHARS])
                continue
            yield row
    finally:
        close = getattr(handle, "close", None)
        if close is not None:
            close()


def read_requests(
    paths: Sequence[str | Path], *, hours: float, max_requests: int = MAX_REQUESTS
) -> LogRequests:
    """The requests of the last ``hours`` (before the newest line of all ``paths``)."""
    out = LogRequests()
    window = hours * 3600
    rows: list[Row] = []
    newest = float("-inf")

    def trim() -> None:
        # Memory stays bounded by the window: rows older than it (so far) go, and past the
        # cap only the newest are kept.
        nonlocal rows
        rows = [r for r in rows if r.ts >= newest - window]
        if len(rows) > max_requests:
            rows.sort(key=lambda r: r.ts)
            rows = rows[-max_requests:]
            out.truncated = True

    for path in paths:
        try:
            for row in _rows(Path(path), out):
                rows.append(row)
                newest = max(newest, row.ts)
                if len(rows) >= 2 * max_requests:
                    trim()
        except OSError as exc:
            out.unreadable.append(f"{path}: {exc.strerror or exc}")
        except EOFError as exc:  # a gzip file cut short: what was read before counts
            out.unreadable.append(f"{path}: {exc}")
    trim()
    rows.sort(key=lambda r: r.ts)  # stable: lines of one time keep their order
    out.requests = [facts_from_row(row) for row in rows]
    out.in_window = len(out.requests)
    if out.requests:
        out.first_ts, out.last_ts = out.requests[0].now, out.requests[-1].now
    return out
