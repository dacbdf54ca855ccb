"""The slow, forgiving path: one regular expression per line, in Python.

The DuckDB CSV reader is about three times faster but gives up on a line whose quoting is off
(a user agent with a stray ``"``, a truncated last line). Those lines come here; whatever this
parser cannot read either is counted as bad and skipped, never fatal.
"""

from __future__ import annotations

import calendar
import json
import re
from datetime import datetime
from typing import NamedTuple

from .formats import COMBINED, COMMON, JsonMapping, get_path, json_mapping

_MONTHS = {m: i for i, m in enumerate(calendar.month_abbr) if m}
_CLF = re.compile(r"(\d{2})/([A-Za-z]{3})/(\d{4}):(\d{2}):(\d{2}):(\d{2})(?: ([+-])(\d{2})(\d{2}))?")
_UNESCAPE = re.compile(r"\\(.)")


class Row(NamedTuple):
    """One request, the columns of the ``requests`` table."""

    ip: str
    ts: float
    method: str
    path: str
    query: str
    status: int | None
    bytes: int | None
    referer: str
    ua: str
    account: str | None
    fp: str | None = None
    """Fingerprint fields beyond the user agent (JSON logs that carry them), else None."""


def clf_time(text: str) -> float | None:
    """``17/May/2015:10:05:03 +0000`` -> seconds since the epoch (UTC); None when malformed."""
    m = _CLF.match(text)
    if m is None:
        return None
    day, mon, year, hh, mm, ss, sign, oh, om = m.groups()
    month = _MONTHS.get(mon.title())
    if month is None:
        return None
    try:
        ts = calendar.timegm((int(year), month, int(day), int(hh), int(mm), int(ss), 0, 0, 0))
    except (ValueError, OverflowError):
        return None
    if sign:
        offset = int(oh) * 3600 + int(om) * 60
        ts -= offset if sign == "+" else -offset
    return float(ts)


def split_request(request: str) -> tuple[str, str, str]:
    """``GET /a?b=1 HTTP/1.1`` -> (method, path, query). Garbage gives ('', '', '')-ish parts."""
    parts = request.split(" ")
    method = parts[0] if parts else ""
    target = parts[1] if len(parts) > 1 else ""
    path, _, query = target.partition("?")
    return method, path, query


def _int(text: str) -> int | None:
    return int(text) if text.isdigit() else None


def parse_line(line: str) -> Row | None:
    """A combined or common line -> Row, or None when it is neither."""
    line = line.rstrip("\r\n")
    m = COMBINED.match(line)
    referer = ua = ""
    if m is not None:
        ip, _, user, when, request, status, size, referer, ua = m.groups()
        referer = _UNESCAPE.sub(r"\1", referer)
        ua = _UNESCAPE.sub(r"\1", ua)
    else:
        m = COMMON.match(line)
        if m is None:
            return None
        ip, _, user, when, request, status, size = m.groups()
    ts = clf_time(when)
    if ts is None:
        return None
    method, path, query = split_request(_UNESCAPE.sub(r"\1", request))
    return Row(
        ip,
        ts,
        method,
        path,
        query,
        _int(status),
        _int(size),
        "" if referer == "-" else referer,
        "" if ua == "-" else ua,
        None if user == "-" else user,
    )


_IP_PORT = re.compile(r"^(\d+\.\d+\.\d+\.\d+):\d+$")
_URL_HEAD = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://[^/]*")


def _json_time(value: object, kind: str) -> float | None:
    try:
        if kind == "epoch":
            return float(value)  # type: ignore[arg-type]
        if kind == "clf":
            return clf_time(str(value))
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except (TypeError, ValueError, OverflowError):
        return None


def parse_json_line(line: str, mapping: JsonMapping) -> Row | None:
    """One JSON log line -> Row with the same field table the DuckDB path uses; None if unusable."""
    try:
        obj = json.loads(line)
    except ValueError:
        return None
    if not isinstance(obj, dict):
        return None
    p = dict(mapping.paths)

    def get(field: str) -> str:
        value = get_path(obj, p[field]) if field in p else None
        return "" if value is None or value == "-" else str(value)

    ip = _IP_PORT.sub(r"\1", get("ip"))
    ts = _json_time(get_path(obj, p["time"]), mapping.time_kind) if "time" in p else None
    if not ip or ts is None:
        return None
    if "uri" in p:
        method = get("method") or "GET"
        target = _URL_HEAD.sub("", get("uri"))
    else:
        method, _, rest = get("request").partition(" ")
        target = rest.partition(" ")[0]
    path, _, query = target.partition("?")
    status = get("status")
    size = get("bytes")
    account = get("account")
    fp = " | ".join(v for v in (get("accept_language"), get("client_hints")) if v) or None
    return Row(
        ip,
        ts,
        method,
        path,
        query,
        int(status) if status.isdigit() else None,
        int(size) if size.isdigit() else None,
        get("referer"),
        get("ua"),
        account or None,
        fp,
    )


class LineParser:
    """One line of a live or replayed log: combined/common, or JSON lines with the field table
    picked from the first JSON line (a log does not change format halfway)."""

    def __init__(self) -> None:
        self._json: JsonMapping | None = None

    def __call__(self, text: str) -> Row | None:
        if not text.lstrip().startswith("{"):
            return parse_line(text)
        if self._json is None:
            try:
                self._json = json_mapping([text])
            except ValueError:
                return None
        return parse_json_line(text, self._json)
