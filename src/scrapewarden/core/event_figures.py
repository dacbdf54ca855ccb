"""Figures from the event trail over a period: decisions by action and by detector, challenges.

What the compliance report (:mod:`.compliance`) says each measure caught. Decisions are counted
as ``scrapewarden events summary`` counts them (:mod:`scrapewarden.state.summary`): enforced
ones by action, observe-mode ones apart, and the solve rate as passed answers per challenge
decision. The detector behind each reason is read back from its wording (:mod:`.reasons`).

Pure: no I/O, no clock; the period is passed in.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from .reasons import OPERATOR_ALLOW, source_of
from .sampling import is_tag, sample_only

CHALLENGE_PASSED = "challenge_passed"
CHALLENGE_FAILED = "challenge_failed"
"""Event actions for checked challenge answers; the same values as ``state.summary`` (a test
keeps them equal: core does not import the adapters)."""

SAMPLES_PER_DETECTOR = 3
SAMPLE_TEXT = 200
"""Characters kept of a sample's path or user agent: enough to recognise, short enough to print."""


class EventLike(Protocol):
    """What the report reads of a stored event (``state.base.Event`` has these)."""

    @property
    def ts(self) -> float: ...
    @property
    def action(self) -> str: ...
    @property
    def enforced(self) -> bool: ...
    @property
    def path(self) -> str: ...
    @property
    def user_agent(self) -> str: ...
    @property
    def account(self) -> str | None: ...
    @property
    def record(self) -> str | None: ...
    @property
    def reasons(self) -> Sequence[str]: ...


@dataclass(frozen=True, slots=True)
class Period:
    """``since`` (inclusive) to ``until`` (exclusive), epoch seconds."""

    since: float
    until: float

    def __post_init__(self) -> None:
        if not self.since < self.until:
            raise ValueError("the period must start before it ends")

    def holds(self, ts: float) -> bool:
        return self.since <= ts < self.until

    @property
    def days(self) -> float:
        return (self.until - self.since) / 86400.0


# -- figures from the event trail ----------------------------------------------------------------


@dataclass(slots=True)
class EventFigures:
    """What the event trail holds for the period."""

    events: int = 0
    actions: Counter[str] = field(default_factory=Counter)
    """Enforced decisions by action (throttle, challenge, block)."""
    observed: Counter[str] = field(default_factory=Counter)
    """Observe-mode decisions by the action they would have taken."""
    detectors: Counter[str] = field(default_factory=Counter)
    """Decisions (enforced or observed) that each detector contributed a reason to."""
    detector_actors: dict[str, Counter[str]] = field(default_factory=dict)
    """Per detector, decisions by the actor kind its reason named (ip, account...)."""
    partners_over_quota: Counter[str] = field(default_factory=Counter)
    operator_allowed: int = 0
    """Requests an operator allow let through that would otherwise have been refused (R15:
    scraping allowed by contract stays monitored); by actor kind in ``detector_actors``."""
    operator_overrides: Counter[str] = field(default_factory=Counter)
    """... by the action the allow set aside (block, challenge, throttle)."""
    passed_by_kind: Counter[str] = field(default_factory=Counter)
    passed_with_signs: Counter[str] = field(default_factory=Counter)
    refused_by_reason: Counter[str] = field(default_factory=Counter)
    record_decisions: int = 0
    """Decisions on requests for a protected record."""
    anonymous_record_decisions: int = 0
    """... of those, from clients with no account (public pages: R9)."""
    first_observed: float | None = None
    last_observed: float | None = None
    first_enforced: float | None = None
    last_enforced: float | None = None
    samples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """A few decisions per detector, as recorded (attacker-controlled text: escape when shown)."""

    @property
    def challenges(self) -> int:
        return self.actions["challenge"]

    @property
    def passed(self) -> int:
        return sum(self.passed_by_kind.values())

    @property
    def failed(self) -> int:
        return sum(self.refused_by_reason.values())

    @property
    def solve_rate(self) -> float | None:
        """Passed answers per challenge decision, as ``scrapewarden events summary`` counts it."""
        return self.passed / self.challenges if self.challenges else None

    def caught(self, *prefixes: str) -> dict[str, int]:
        """Decisions per detector whose name is one of ``prefixes`` or starts with ``prefix.``."""
        return {
            name: count
            for name, count in sorted(self.detectors.items())
            if any(name == p or name.startswith(p + ".") for p in prefixes)
        }


def tally_events(events: Iterable[EventLike], period: Period) -> EventFigures:
    """Count the events of ``period`` (others are skipped)."""
    out = EventFigures()
    for event in events:
        ts = event.ts
        if not period.holds(ts) or sample_only(event.action, event.reasons):
            continue  # sampled allowed requests (core/sampling.py): a sample, not refusals
        out.events += 1
        how, *detail = list(event.reasons) or ["?"]
        if event.action == CHALLENGE_PASSED:
            out.passed_by_kind[how] += 1
            out.passed_with_signs.update(detail)
            continue
        if event.action == CHALLENGE_FAILED:
            out.refused_by_reason.update(detail or ["?"])
            continue
        if event.enforced:
            out.actions[event.action] += 1
            out.first_enforced = ts if out.first_enforced is None else min(out.first_enforced, ts)
            out.last_enforced = ts if out.last_enforced is None else max(out.last_enforced, ts)
        else:
            out.observed[event.action] += 1
            out.first_observed = ts if out.first_observed is None else min(out.first_observed, ts)
            out.last_observed = ts if out.last_observed is None else max(out.last_observed, ts)
        if event.record:
            out.record_decisions += 1
            if not event.account:
                out.anonymous_record_decisions += 1
        seen: set[str] = set()
        for reason in event.reasons:
            if is_tag(reason):
                continue
            source = source_of(reason)
            name = source.detector
            if source.partner:
                out.partners_over_quota[source.partner] += 1
            if name in seen:
                continue
            seen.add(name)
            out.detectors[name] += 1
            if name == OPERATOR_ALLOW:
                out.operator_allowed += 1
                out.operator_overrides[source.overrides or "?"] += 1
            if source.actor:
                out.detector_actors.setdefault(name, Counter())[source.actor] += 1
            kept = out.samples.setdefault(name, [])
            if len(kept) < SAMPLES_PER_DETECTOR:
                kept.append(_sample(event, reason))
    return out


def _sample(event: EventLike, reason: str) -> dict[str, Any]:
    return {
        "ts": event.ts,
        "action": event.action if event.enforced else f"{event.action}(observe)",
        "path": event.path[:SAMPLE_TEXT],
        "user_agent": event.user_agent[:SAMPLE_TEXT],
        "account": event.account or "",
        "reason": reason[:SAMPLE_TEXT],
    }
