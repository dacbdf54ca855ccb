"""Log lines through the live engine: the bridge used by ``watch`` and the conformance test.

A log line carries less than a live request (no headers, no cookies), so the facts built here
hold the address, method, path, query, user agent and, when the log names one, the account.
The engine then judges exactly as it judges live traffic.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..core.batch import Verdict, verdict_for
from ..core.decision import Action, Decision
from ..core.engine import Engine
from ..core.facts import RequestFacts
from ..core.policy import Policy
from .fallback import Row


def facts_from_row(row: Row) -> RequestFacts:
    return RequestFacts(
        now=row.ts,
        ip=row.ip,
        method=row.method or "GET",
        path=row.path or "/",
        query=row.query,
        user_agent=row.ua,
        account_id=row.account,
    )


@dataclass
class LiveTally:
    """The strongest decision the live engine took about each address."""

    policy: Policy
    max_score: dict[str, float] = field(default_factory=dict)
    max_action: dict[str, Action] = field(default_factory=dict)
    verified: set[str] = field(default_factory=set)

    def add(self, ip: str, decision: Decision) -> None:
        if decision.evidence and decision.evidence[0].detector == "verified_bot":
            self.verified.add(ip)
        if decision.score > self.max_score.get(ip, -1.0):
            self.max_score[ip] = decision.score
        if decision.action > self.max_action.get(ip, Action.ALLOW):
            self.max_action[ip] = decision.action

    def verdict(self, ip: str) -> Verdict:
        return verdict_for(
            self.max_score.get(ip, 0.0), self.policy.thresholds, verified_bot=ip in self.verified
        )


def replay(rows: list[Row], engine: Engine) -> LiveTally:
    """Decide every row in time order; what the live engine would have concluded per address."""
    tally = LiveTally(engine.policy)
    for row in sorted(rows, key=lambda r: r.ts):
        tally.add(row.ip, engine.decide(facts_from_row(row)))
    return tally
