"""Which detector wrote a reason: the event trail keeps reasons as text, reports count detectors.

A stored event (``state.base.Event``) keeps the human reasons of its decision, not the
detector names behind them (the names were not part of the trail's format, and every stored
event would have to be rewritten to add them). Each detector words its reason in a fixed way,
so the name can be read back from the text. tests/core/test_reasons.py builds real findings
from every detector and checks the name read back is the detector's own, so a reworded
reason fails a test instead of silently moving counts to ``other``.

Pure: no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .challenge_signals import REASONS as CHALLENGE_REASONS

OPERATOR_ALLOW = "operator_allow"
"""The name for an operator allow that let a request through (``core/allows.py``)."""
OTHER = "other"
"""A reason no detector is known to write (an older version's wording, a door's own note)."""

_ACTOR = r"(?P<actor>ip|network|session|account|fingerprint)"

# (pattern, detector), tried in order: the first match wins. Specific wordings come before the
# general ones they would also match ("claims to be X from..." before "claims X but...").
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.DOTALL), name)
    for pattern, name in (
        (r"banned \(\w+\)", "ban"),
        (r"address on the deny list", "deny"),
        (r"user agent on the deny list: .*", "client.deny_ua"),
        (r"no user agent", "client.empty_ua"),
        (r"AI crawler user agent \(.*\)", "client.ai_crawler"),
        (r"headless/automation browser \(.*\)|headless brand in sec-ch-ua .*", "client.headless"),
        (r"bot user agent \(.*\)", "client.bot_ua"),
        (r"no Accept-Language header", "client.missing_accept_language"),
        (r"claims to be .* from an address that is not", "client.spoofed_crawler"),
        (
            r"claims [^;]* but (sends Host after \S+|sends Accept-Encoding before Accept)",
            "client.header_order",
        ),
        (r"claims .* but .*", "client.inconsistent_browser"),
        (_ACTOR + r": \d+ pages and no assets loaded", "client.no_assets"),
        (r"this client build fetched \d+ pages and \d+ assets across addresses", "client.fleet_no_assets"),
        (_ACTOR + r": \d+ requests in the last minute \(limit \d+\)", "rate"),
        (_ACTOR + r": \d+ distinct records (this hour|today) \(budget \d+\)", "breadth"),
        (
            _ACTOR + r": \d+% of the last \d+ (record ids were neighbours|records came in ascending order).*",
            "enumeration",
        ),
        (r"requested trap path .*|this address requested a trap path earlier", "trap"),
        (r"account \d+ min old looked up \d+ records in the last .*", "new_account"),
        (r"address is a Tor exit", "reputation.tor"),
        (r"address in a commercial VPN network", "reputation.vpn"),
        (r"address in a hosting network", "reputation.datacenter"),
        (r"address on the operator list .*", "reputation.list"),
        (r"malformed request: .*", "malformed"),
        (r"partner (?P<partner>.+) over its contracted quota \(.*\)", "partner.quota"),
        (r"under-attack mode: no clearance yet", "under_attack"),
        (r"passed a challenge \(.*\)", "cleared"),
        (r"verified crawler .*", "verified_bot"),
        (r"on the allow list", "allow"),
        (r"allowed by an operator \(" + _ACTOR + r"\)(, overriding (?P<overrides>\w+))?", OPERATOR_ALLOW),
        (r"partner .*", "partner"),
        *((re.escape(text), "challenge." + code) for code, text in CHALLENGE_REASONS.items()),
    )
)


@dataclass(frozen=True, slots=True)
class ReasonSource:
    detector: str
    """The detector's name as in ``Evidence.detector`` (``reputation.list`` for every operator
    list), or :data:`OTHER`."""
    actor: str = ""
    """The actor kind the reason names (``account: 130 distinct records...``), or ''."""
    partner: str = ""
    """For ``partner.quota``: the partner's name."""
    overrides: str = ""
    """For ``operator_allow``: the action the allow set aside (block, challenge...), or ''."""


def source_of(reason: str) -> ReasonSource:
    """The detector (and actor kind, partner) that wrote ``reason``."""
    for pattern, name in _PATTERNS:
        match = pattern.fullmatch(reason)
        if match is not None:
            groups = match.groupdict()
            return ReasonSource(
                name, groups.get("actor") or "", groups.get("partner") or "", groups.get("overrides") or ""
            )
    return ReasonSource(OTHER)


def detector_of(reason: str) -> str:
    """Only the detector's name (see :func:`source_of`)."""
    return source_of(reason).detector
