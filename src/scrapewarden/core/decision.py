"""What the engine answers: an action, a score and the evidence behind it."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Literal


class Action(IntEnum):
    """The action ladder, mildest first. Comparisons (``>=``) follow the ladder."""

    ALLOW = 0
    THROTTLE = 1
    CHALLENGE = 2
    BLOCK = 3

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(frozen=True, slots=True)
class Evidence:
    """One detector's finding. ``weight`` is 0-100; ``reason`` is for humans and logs."""

    detector: str
    weight: float
    reason: str
    actor: str = ""
    """Which actor kind the finding is about: ip, network, session, account, fingerprint, or ''."""


@dataclass(slots=True)
class Decision:
    """The engine's answer for one request."""

    action: Action
    score: float
    evidence: list[Evidence] = field(default_factory=list)
    enforced: bool = True
    """False in observe mode: ``action`` is what *would* have happened."""
    retry_after: int = 0
    """Seconds a throttled client should wait (``Retry-After``)."""
    tarpit_seconds: float = 0.0
    decoy: bool = False
    ban_key: str | None = None
    """The ban that matched, e.g. ``ip:203.0.113.9`` or ``account:42``."""
    allow_key: str | None = None
    """The operator allow that let the request through (``account:42``); see :mod:`.allows`."""
    overridden: Action | None = None
    """With ``allow_key``: what the request would have been answered without the allow (ALLOW
    when nothing was against it). The Warden records an event when this is a refusal."""
    record: tuple[str, str] | None = None
    """(kind, id) of the protected record the request asked for, if any."""
    new_bans: list[tuple[str, str]] = field(default_factory=list)
    """(kind, value) bans the engine asks the door to impose: repeated blocks crossed the
    policy's ``actions.bans`` threshold. The door persists them with an escalating expiry."""
    offences: list[tuple[str, str]] = field(default_factory=list)
    """(kind, key) of the actors in the policy's ban scopes this refusal counts against. The
    engine counts them itself unless a door deciding in steps counts them where its counters
    live (``Engine.finish(..., count_offences=False)``, then ``Engine.offences_counted``)."""
    challenge_bits: int = 0
    """Proof-of-work difficulty (leading zero bits) to ask for; 0 unless the action is CHALLENGE."""
    challenge_kind: Literal["pow", "captcha"] = "pow"
    """Which challenge to show: proof-of-work, or a CAPTCHA (only with a provider configured and
    a score in the CAPTCHA band)."""

    @property
    def effective(self) -> Action:
        """What the door must do: the action when enforced, ALLOW in observe mode."""
        return self.action if self.enforced else Action.ALLOW

    def reasons(self) -> list[str]:
        return [e.reason for e in self.evidence]
