"""Which format a log is in, and where JSON logs keep each field.

Text logs: the NCSA *common* format (``%h %l %u %t "%r" %>s %b``) and *combined* (common plus
``"%{Referer}i" "%{User-agent}i"``), as nginx and Apache write them by default.

JSON lines: nginx's ``log_format ... escape=json`` with its variable names, and the field names
of common cloud load balancers (AWS ALB/ELB records as exported to JSON, Google Cloud Load
Balancing's ``httpRequest`` object). Each logical field lists the JSON paths that may hold it;
the first one present in the sampled lines wins. Adding a source means adding names here.
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Format = Literal["combined", "common", "json"]
SNIFF_LINES = 50

# One JSON field per logical field; first match wins. Dotted names are nested objects.
JSON_FIELDS: dict[str, tuple[str, ...]] = {
    "ip": (
        "remote_addr",
        "client_ip",
        "clientIp",
        "httpRequest.remoteIp",
        "remoteIp",
        "client_addr",
        "ip",
    ),
    "time": (
        "time_iso8601",
        "time_local",
        "msec",
        "timestamp",
        "request_creation_time",
        "time",
        "@timestamp",
        "receiveTimestamp",
    ),
    # The whole request line ``GET /path HTTP/1.1``; used when method and URI are not separate.
    "request": ("request",),
    "method": ("request_method", "httpRequest.requestMethod", "method", "http_method"),
    "uri": ("request_uri", "httpRequest.requestUrl", "request_url", "uri", "url", "path"),
    "status": ("status", "httpRequest.status", "elb_status_code", "status_code"),
    "bytes": ("body_bytes_sent", "bytes_sent", "httpRequest.responseSize", "sent_bytes", "size"),
    "referer": ("http_referer", "httpRequest.referer", "referer", "referrer"),
    "ua": ("http_user_agent", "httpRequest.userAgent", "user_agent", "userAgent"),
    "account": ("remote_user", "account", "user_id", "user"),
    # Client-fingerprint fields some sites log: with them, a campaign's signature is more than
    # its user agent.
    "accept_language": ("http_accept_language", "accept_language", "httpRequest.acceptLanguage"),
    "client_hints": ("http_sec_ch_ua", "sec_ch_ua"),
}

TimeKind = Literal["epoch", "clf", "iso"]


@dataclass(frozen=True)
class JsonMapping:
    """Which JSON path holds each logical field (absent fields are left out)."""

    paths: tuple[tuple[str, str], ...]
    time_kind: TimeKind

    def get(self, field: str) -> str | None:
        for name, path in self.paths:
            if name == field:
                return path
        return None


COMBINED = re.compile(
    r'(\S+) (\S+) (\S+) \[([^\]]+)\] "((?:[^"\\]|\\.)*)" (\d{3}|-) (\d+|-)'
    r' "((?:[^"\\]|\\.)*)" "((?:[^"\\]|\\.)*)"'
)
COMMON = re.compile(r'(\S+) (\S+) (\S+) \[([^\]]+)\] "((?:[^"\\]|\\.)*)" (\d{3}|-) (\d+|-)')
_CLF_TIME = re.compile(r"\d{2}/[A-Za-z]{3}/\d{4}:\d{2}:\d{2}:\d{2}")


def open_text(path: str | Path) -> Iterable[str]:
    """Lines of a plain or gzip-compressed log, decoded leniently (logs are not always UTF-8)."""
    p = Path(path)
    with p.open("rb") as raw:
        magic = raw.read(2)
    if magic == b"\x1f\x8b":
        return gzip.open(p, "rt", encoding="utf-8", errors="replace")
    return p.open("r", encoding="utf-8", errors="replace")


def sample(path: str | Path, limit: int = SNIFF_LINES) -> list[str]:
    out: list[str] = []
    handle = open_text(path)
    try:
        for line in handle:
            line = line.strip()
            if line:
                out.append(line)
                if len(out) >= limit:
                    break
    finally:
        close = getattr(handle, "close", None)
        if close is not None:
            close()
    return out


def detect(lines: list[str]) -> Format:
    """The format most of ``lines`` are in. Raises ValueError when none fits."""
    if not lines:
        raise ValueError("the log is empty")
    votes = {"json": 0, "combined": 0, "common": 0}
    for line in lines:
        if line.startswith("{"):
            votes["json"] += 1
        elif COMBINED.match(line):
            votes["combined"] += 1
        elif COMMON.match(line):
            votes["common"] += 1
    # A common line is a combined line cut short: both count for the text formats.
    text = votes["combined"] + votes["common"]
    best = (
        "json" if votes["json"] > text else "combined" if votes["combined"] >= votes["common"] else "common"
    )
    if max(votes["json"], text) * 2 < len(lines):
        raise ValueError(
            "not a combined, common or JSON-lines access log (fewer than half of the first "
            f"{len(lines)} lines fit any of them)"
        )
    return best  # type: ignore[return-value]


def get_path(obj: object, dotted: str) -> object:
    """The value at a dotted JSON path (``httpRequest.remoteIp``), or None."""
    return _get(obj, dotted)


def _get(obj: object, dotted: str) -> object:
    for part in dotted.split("."):
        if not isinstance(obj, dict) or part not in obj:
            return None
        obj = obj[part]
    return obj


def json_mapping(lines: list[str]) -> JsonMapping:
    """Pick the JSON paths for each field from sample lines. Raises ValueError when the
    address or the time cannot be found: without them there is nothing to analyse."""
    objects = []
    for line in lines:
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            objects.append(value)
    if not objects:
        raise ValueError("no JSON object in the first lines")
    paths: dict[str, str] = {}
    for field, names in JSON_FIELDS.items():
        for name in names:
            if any(_get(o, name) not in (None, "") for o in objects):
                paths[field] = name
                break
    missing = [f for f in ("ip", "time") if f not in paths]
    if "uri" not in paths and "request" not in paths:
        missing.append("uri")
    if missing:
        raise ValueError(
            f"JSON log without {', '.join(missing)} (looked for "
            + "; ".join(f"{m}: {', '.join(JSON_FIELDS[m if m != 'uri' else 'uri'])}" for m in missing)
            + ")"
        )
    first = next(str(_get(o, paths["time"])) for o in objects if _get(o, paths["time"]) is not None)
    kind: TimeKind
    if re.fullmatch(r"\d+(\.\d+)?", first):
        kind = "epoch"
    elif _CLF_TIME.match(first):
        kind = "clf"
    else:
        kind = "iso"
    return JsonMapping(tuple(sorted(paths.items())), kind)
