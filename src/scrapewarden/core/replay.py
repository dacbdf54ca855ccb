"""Replay: what two policies would have decided on the same requests.

Before a policy change is published, the team runs the requests recorded so far through a fresh
:class:`~scrapewarden.core.engine.Engine` for the policy in force and one for the draft, in time
order, and compares. Each engine starts empty (no counters, no bans), so the comparison is fair:
both see exactly the same requests from the same starting point.

When the requests are a sample — every request of a share of addresses (see
:mod:`.sampling`) — ``share`` says which share, and :meth:`ReplayResult.estimate` scales a
count up to all traffic.

Pure: the requests (with their times) are passed in; nothing is read or written.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from .decision import Action
from .engine import Engine
from .facts import RequestFacts
from .policy import Policy

MAX_CHANGED = 500
"""Requests whose action differs that are kept for showing (all of them are counted)."""


@dataclass(frozen=True, slots=True)
class Changed:
    """One request the two policies decided differently."""

    facts: RequestFacts
    current: str
    draft: str
    draft_reasons: tuple[str, ...]


@dataclass(slots=True)
class ReplayResult:
    requests: int = 0
    current: Counter[str] = field(default_factory=Counter)
    """Requests by action (allow, throttle, challenge, block) under the policy in force."""
    draft: Counter[str] = field(default_factory=Counter)
    changed: list[Changed] = field(default_factory=list)
    """The first :data:`MAX_CHANGED` requests decided differently, in time order."""
    changed_count: int = 0
    stricter: int = 0
    """Requests the draft treats more harshly (further up the action ladder)."""
    milder: int = 0
    share: float = 1.0
    """Share of addresses the requests cover (1: all of them); counts ÷ share estimate all."""

    def actions(self) -> list[str]:
        return [a.label for a in Action]

    @property
    def scaled(self) -> bool:
        return self.share < 1.0

    def estimate(self, count: int) -> int:
        """``count`` scaled up to all traffic (unchanged when the requests were not a sample)."""
        return count if self.share >= 1.0 else round(count / self.share)


def replay(
    requests: Iterable[RequestFacts], current: Policy, draft: Policy, *, share: float = 1.0
) -> ReplayResult:
    """Decide every request (already in time order) under both policies. ``share``: the share
    of addresses ``requests`` hold every request of, when they are a sample."""
    if not 0 < share <= 1:
        raise ValueError("share must be in (0, 1]")
    engines = (Engine(current), Engine(draft))
    result = ReplayResult(share=share)
    for facts in requests:
        before = engines[0].decide(facts)
        after = engines[1].decide(facts)
        result.requests += 1
        result.current[before.action.label] += 1
        result.draft[after.action.label] += 1
        if before.action is after.action:
            continue
        result.changed_count += 1
        if after.action > before.action:
            result.stricter += 1
        else:
            result.milder += 1
        if len(result.changed) < MAX_CHANGED:
            reasons = tuple(after.reasons())
            result.changed.append(Changed(facts, before.action.label, after.action.label, reasons))
    return result
