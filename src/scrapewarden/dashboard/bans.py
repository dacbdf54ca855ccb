"""Ban input checks and ban exports, shared by the pages and the JSON API; the same checks read
an operator allow (:mod:`.allows_view`), which names its actor the same way."""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from ..core.pseudonym import Pseudonymizer
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


@dataclass(frozen=True, slots=True)
class ActorOrder:
    """What an operator asked for one actor (a ban or an allow): whom, for how long, and why."""

    kind: BanKind
    value: str
    ttl: float | None
    note: str

    def signed(self, user: str) -> str:
        """The note as stored: who gave the order stays with it."""
        return f"{self.note} [by {user}]" if self.note else f"[by {user}]"


def order_from_form(form: Mapping[str, str], pseudonymizer: Pseudonymizer) -> ActorOrder:
    """An actor page's ban or allow form. A page opened by pseudonym sends it as ``expect``: the
    value typed must pseudonymise to it, so the order cannot land on another actor."""
    kind, value = check_target(form.get("kind", ""), form.get("value", ""))
    expect = form.get("expect", "")
    if expect and actor_pseudonym(pseudonymizer, kind, value) != expect:
        raise BanInputError(f"{value!r} is not the actor on this page (its pseudonym differs)")
    return ActorOrder(kind, value, parse_ttl(form.get("ttl", "")), check_reason(form.get("note", "")))


def order_from_json(body: Any, *, until: str) -> ActorOrder:
    """A ``POST /api/bans`` or ``/api/allows`` body; ``until`` says what no expiry means."""
    if not isinstance(body, dict):
        raise BanInputError("send a JSON object with kind and value")
    kind, value = check_target(str(body.get("kind", "")), json_text(body.get("value")))
    ttl_raw = body.get("ttl_seconds", 0)
    if ttl_raw is not None and (isinstance(ttl_raw, bool) or not isinstance(ttl_raw, int | float)):
        raise BanInputError(f"ttl_seconds must be a number (0 or null for {until})")
    return ActorOrder(kind, value, check_ttl(ttl_raw), check_reason(json_text(body.get("reason", ""))))


def json_text(value: Any) -> str:
    if not isinstance(value, str):
        raise BanInputError("value and reason must be strings")
    return value


def actor_pseudonym(p: Pseudonymizer, kind: str, value: str) -> str:
    """How the event trail names this actor (what an actor page opened by pseudonym shows)."""
    if kind == "ip":
        return p.ip(value)
    if kind == "account":
        return p.account(value)
    if kind == "session":
        return p.generic("session", value)
    return value


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
