"""The engine: request facts in, a decision out. Pure: no I/O, the clock is ``facts.now``."""

from __future__ import annotations

from .decision import Action, Decision
from .facts import RequestFacts
from .policy import Policy


class Engine:
    """STUB — being written. API: ``Engine(policy).decide(facts) -> Decision``."""

    def __init__(self, policy: Policy | None = None) -> None:
        self.policy = policy or Policy()

    def decide(self, facts: RequestFacts) -> Decision:
        return Decision(action=Action.ALLOW, score=0.0, enforced=not self.policy.observe)
