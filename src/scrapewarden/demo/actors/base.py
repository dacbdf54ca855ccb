"""What every demo actor shares: the target it talks to and the result it reports.

An actor is an ``async def run(target: Target, deadline: float, rng: random.Random) ->
ActorResult`` (or a class with that method). All actors talk real HTTP to ``target.base_url``
on loopback and say which public address they are in ``X-Forwarded-For`` (the demo site trusts
that header from 127.0.0.1 only, as it would from a front proxy). Every loop stops at
``deadline`` (``time.monotonic()``) and at its own request cap.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Literal

from ..records import records_in

Kind = Literal["scraper", "human", "good_bot"]


@dataclass(frozen=True)
class Target:
    """The site under test and what a client may know about it."""

    base_url: str
    secret: bytes
    """Record-token key, for scoring only (see ``demo.records``)."""
    people: int
    """Profiles are /users/1 .. /users/{people}."""
    handles: tuple[str, ...] = ()
    """Some existing handles (for /@handle), for actors that browse by name."""
    first_names: tuple[str, ...] = ()
    """Names that find people in search, for people who search a friend's name."""


@dataclass
class ActorResult:
    name: str
    kind: Kind
    requests: int = 0
    records: set[int] = field(default_factory=set)
    """Ids of people whose intact record this actor received."""
    records_before_first_action: int | None = None
    throttled: int = 0
    challenged: int = 0
    blocked: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    sessions: int = 1
    """People actors: browsing sessions this result covers (one per person by default)."""
    errors: int = 0

    def saw(
        self, status: int, body: str, secret: bytes, elapsed_s: float, headers: dict[str, str] | None = None
    ) -> None:
        """Score one response. ``headers`` may carry ``x-scrapewarden-action`` (see below)."""
        self.requests += 1
        self.latencies_ms.append(elapsed_s * 1000.0)
        if status == 200:
            self.records |= records_in(body, secret)
            return
        action = _action_of(status, body)
        if action is None:
            return
        if self.records_before_first_action is None:
            self.records_before_first_action = len(self.records)
        if action == "throttled":
            self.throttled += 1
        elif action == "challenged":
            self.challenged += 1
        else:
            self.blocked += 1

    @property
    def outcome(self) -> str:
        if self.blocked:
            return "blocked"
        if self.challenged:
            return "challenged"
        if self.throttled:
            return "throttled"
        return "none"

    def as_dict(self) -> dict[str, object]:
        before = self.records_before_first_action
        return {
            "name": self.name,
            "kind": self.kind,
            "requests": self.requests,
            "records_exposed": len(self.records),
            "records_before_first_action": len(self.records) if before is None else before,
            "outcome": self.outcome,
        }


def _action_of(status: int, body: str) -> str | None:
    """What a refusal was. Pages of scrapewarden say so; the per-IP baseline answers 429/503."""
    if status in (429, 503):
        return "throttled"
    if status == 403:
        return "challenged" if "check is needed" in body else "blocked"
    return None


def now() -> float:
    return time.monotonic()
