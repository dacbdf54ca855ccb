"""Rate and breadth budgets (statement R3): requests per minute and distinct records per hour/day.

One function per question, each a pure function of an actor's counters and its limits.
"""

from __future__ import annotations

from ..counters import ActorCounts
from ..decision import Evidence
from ..policy import ActorLimits
from ..scoring import limit_weight

# How much faster a record of each sensitivity level uses up a budget.
SENSITIVITY_FACTOR = {1: 0.5, 2: 1.0, 3: 2.0}


def rate_evidence(actor: str, per_minute: float, limits: ActorLimits) -> Evidence | None:
    ratio = per_minute / limits.requests_per_minute
    weight = limit_weight(ratio)
    if not weight:
        return None
    return Evidence(
        "rate",
        weight,
        f"{actor}: {per_minute:.0f} requests in the last minute (limit {limits.requests_per_minute})",
        actor,
    )


def breadth_evidence(
    actor: str, state: ActorCounts, limits: ActorLimits, sensitivity: int
) -> Evidence | None:
    """Distinct protected records viewed per hour and per day against the actor's budget.

    Reads the estimates left by the latest count of a record view.
    """
    return breadth_from_counts(actor, state.seen_hour, state.seen_day, limits, sensitivity)


def breadth_from_counts(
    actor: str, per_hour: float, per_day: float, limits: ActorLimits, sensitivity: int = 2
) -> Evidence | None:
    """The breadth finding from counts of distinct records (live estimates or exact batch counts)."""
    factor = SENSITIVITY_FACTOR.get(sensitivity, 1.0)
    hour_ratio = per_hour * factor / limits.profiles_per_hour
    day_ratio = per_day * factor / limits.profiles_per_day
    if hour_ratio >= day_ratio:
        weight = limit_weight(hour_ratio)
        reason = f"{actor}: {per_hour:.0f} distinct records this hour (budget {limits.profiles_per_hour})"
    else:
        weight = limit_weight(day_ratio)
        reason = f"{actor}: {per_day:.0f} distinct records today (budget {limits.profiles_per_day})"
    if not weight:
        return None
    return Evidence("breadth", weight, reason, actor)
