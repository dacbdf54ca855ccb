"""Operator allows in force: actors an operator looked at and let through, with an expiry.

An allow is the opposite of a ban and is matched the same way (the same kinds, a network by
longest-prefix match, an expiry compared with the time passed in), so the table is a
:class:`~.bans.BanTable`. What differs is what the engine does with a match (see
``Engine.begin``): the request is still counted and judged by every detector, for the record,
and then allowed; the decision says it was an operator allow and what it overrode.

An allow on *any* of the request's actors wins over a ban or a verdict on another of them (an
account allowed from an address that is banned is let through): the operator looked at this
actor and decided; the ban on the address was made without knowing about this account.
"""

from __future__ import annotations

from .bans import BAN_KINDS, BanTable

ALLOW_KINDS = BAN_KINDS
ALLOW_DETECTOR = "operator_allow"
"""``Evidence.detector`` of an operator allow (what the metrics count it under)."""


class AllowTable(BanTable):
    """Allows by kind; ``match`` gives the ``kind:value`` of an allow in force, or None.
    Expired entries stop matching at the time passed in (and are dropped when next met)."""

    def __init__(self) -> None:
        super().__init__()
        self.empty = True
        """True while no allow was added since the table was last cleared: what every request
        checks first (most sites have none), cheaper than counting the table."""

    def add(self, kind: str, value: str, expires: float | None) -> None:
        super().add(kind, value, expires)
        self.empty = False

    def remove(self, kind: str, value: str) -> bool:
        removed = super().remove(kind, value)
        self.empty = len(self) == 0
        return removed


OPERATOR_ALLOW = "allowed by an operator ("
"""How every operator allow's reason begins (what figures and replays recognise it by)."""


def allow_reason(kind: str, overridden: str = "") -> str:
    """The reason an allowed decision carries. It names the kind, never the value: reasons are
    stored with events, and the value may be an address or an account id."""
    text = f"{OPERATOR_ALLOW}{kind})"
    return f"{text}, overriding {overridden}" if overridden else text


__all__ = ["ALLOW_DETECTOR", "ALLOW_KINDS", "OPERATOR_ALLOW", "AllowTable", "allow_reason"]
