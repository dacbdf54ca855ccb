"""Ban input checks and ban exports, shared by the pages and the JSON API."""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Sequence
from typing import Any, cast

from ..logs.bans_out import FORMATS, render
from ..state.base import BAN_KINDS, Ban, BanKind

MAX_VALUE_LENGTH = 512
MAX_REASON_LENGTH = 500
MAX_TTL_SECONDS = 10 * 365 * 86400
EXPORT_FORMATS = ("json", *FORMATS)
TTL_CHOICES = (("1h", 3600), ("1 day", 86400), ("7 days", 7 * 86400), ("30 days", 30 * 86400), ("never", 0))
_TTL_PART = re.compile(r"(\d+)([smhdw])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


class BanInputError(ValueError):
    """A ban that cannot be stored as asked; the message says why."""


def check_target(kind: str, value: str) -> tuple[BanKind, str]:
    """``(kind, value)`` in the canonical form the engine matches against."""
    if kind not in BAN_KINDS:
        raise BanInputError(f"unknown ban kind {kind!r}; expected one of {', '.join(BAN_KINDS)}")
    value = value.strip()
    if kind == "ip":
        try:
            address = ipaddress.ip_address(value)
        except ValueError:
            raise BanInputError("not an IP address") from None
        mapped = getattr(address, "ipv4_mapped", None)
        return "ip", str(mapped or address)
    if kind == "network":
        try:
            return "network", str(ipaddress.ip_network(value, strict=False))
        except ValueError:
            raise BanInputError("not a network (CIDR such as 203.0.113.0/24)") from None
    if not value or len(value) > MAX_VALUE_LENGTH or not value.isprintable():
        raise BanInputError(f"a {kind} is 1-{MAX_VALUE_LENGTH} printable characters")
    return cast(BanKind, kind), value


def parse_ttl(text: str) -> float | None:
    """Seconds in ``3600``, ``30m``, ``1h30m``, ``7d``; ``0`` or empty: forever (None)."""
    cleaned = text.strip().lower()
    if cleaned in ("", "0", "never", "forever"):
        return None
    if cleaned.isdigit():
        seconds = int(cleaned)
    elif _TTL_PART.sub("", cleaned) == "":
        seconds = sum(int(n) * _UNIT_SECONDS[unit] for n, unit in _TTL_PART.findall(cleaned))
    else:
        raise BanInputError("a duration is seconds (3600) or 30m, 1h, 2d, 1w; 0 for forever")
    return check_ttl(seconds)


def check_ttl(seconds: float | None) -> float | None:
    if not seconds:
        return None
    if not 0 < seconds <= MAX_TTL_SECONDS:
        raise BanInputError(f"a ban lasts at most {MAX_TTL_SECONDS} seconds (or 0 for forever)")
    return float(seconds)


def check_reason(text: str) -> str:
    text = " ".join(text.split())
    if len(text) > MAX_REASON_LENGTH:
        raise BanInputError(f"a note has at most {MAX_REASON_LENGTH} characters")
    return text


def ban_json(ban: Ban, now: float) -> dict[str, Any]:
    return {
        "kind": ban.kind,
        "value": ban.value,
        "created": ban.created,
        "expires": ban.expires,
        "active": ban.active(now),
        "reason": ban.reason,
        "offences": ban.offences,
        "source": ban.source,
    }


def export(bans: Sequence[Ban], fmt: str, *, now: float) -> tuple[str, str]:
    """(body, media type). Firewall formats hold the active address and network bans only
    (they cannot express accounts or fingerprints); JSON holds every ban given."""
    if fmt == "json":
        return json.dumps([ban_json(b, now) for b in bans], indent=1) + "\n", "application/json"
    if fmt not in FORMATS:
        raise BanInputError(f"unknown export format {fmt!r}; choose one of {', '.join(EXPORT_FORMATS)}")
    addresses = [b.value for b in bans if b.kind in ("ip", "network") and b.active(now)]
    return render(addresses, fmt, comment="scrapewarden bans (dashboard export)"), "text/plain; charset=utf-8"
