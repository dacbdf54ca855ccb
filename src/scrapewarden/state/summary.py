"""Figures from the event trail: actions taken, and how many challenges were passed.

The solve rate is *answers passed / challenge decisions*: a person challenged once and passing
counts 1/1; a script challenged on every request and never answering counts 0/N. A falling rate
with steady traffic means challenges are reaching people who cannot pass them (broken page,
privacy browser) — or that scrapers are being challenged more; the refusal reasons tell which.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from ..core.sampling import sample_only
from .base import Event

CHALLENGE_PASSED = "challenge_passed"
CHALLENGE_FAILED = "challenge_failed"
"""Event actions for checked challenge answers (the ``reasons`` start with how: pow, nojs, captcha)."""


@dataclass(slots=True)
class Summary:
    events: int = 0
    first_ts: float | None = None
    last_ts: float | None = None
    actions: Counter[str] = field(default_factory=Counter)
    """Decisions by action (observe-mode ones under ``action(observe)``)."""
    passed_by_kind: Counter[str] = field(default_factory=Counter)
    passed_with_signs: Counter[str] = field(default_factory=Counter)
    """Passed answers whose browser showed a sign of automation, per sign."""
    refused_by_reason: Counter[str] = field(default_factory=Counter)

    @property
    def challenges(self) -> int:
        return self.actions["challenge"]

    @property
    def passed(self) -> int:
        return sum(self.passed_by_kind.values())

    @property
    def solve_rate(self) -> float | None:
        """Passed answers per challenge decision; None when nothing was challenged."""
        return self.passed / self.challenges if self.challenges else None

    def as_dict(self) -> dict[str, object]:
        return {
            "events": self.events,
            "first_ts": self.first_ts,
            "last_ts": self.last_ts,
            "actions": dict(self.actions),
            "challenges": self.challenges,
            "passed": self.passed,
            "solve_rate": self.solve_rate,
            "passed_by_kind": dict(self.passed_by_kind),
            "passed_with_signs": dict(self.passed_with_signs),
            "refused_by_reason": dict(self.refused_by_reason),
        }


def summarize(events: Iterable[Event], since: float | None = None) -> Summary:
    """Count ``events`` (optionally only those at or after ``since``)."""
    out = Summary()
    for event in events:
        if (since is not None and event.ts < since) or sample_only(event.action, event.reasons):
            continue  # sampled allowed requests are for replay, not refusal figures
        out.events += 1
        out.first_ts = event.ts if out.first_ts is None else min(out.first_ts, event.ts)
        out.last_ts = event.ts if out.last_ts is None else max(out.last_ts, event.ts)
        how, *detail = event.reasons or ["?"]
        if event.action == CHALLENGE_PASSED:
            out.passed_by_kind[how] += 1
            out.passed_with_signs.update(detail)
        elif event.action == CHALLENGE_FAILED:
            out.refused_by_reason.update(detail or ["?"])
        else:
            out.actions[event.action if event.enforced else f"{event.action}(observe)"] += 1
    return out
