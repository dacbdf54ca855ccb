"""Enumeration: walking record ids in order (``/users/1, 2, 3``) or sweeping names/queries A→Z."""

from __future__ import annotations

from ..counters import ActorCounts
from ..decision import Evidence

MIN_PAIRS = 8
"""Fewer consecutive pairs than this say nothing about order."""
STEP_FRACTION = 0.6
"""Share of near-consecutive ids above which the walk is an enumeration."""
ASCENDING_FRACTION = 0.9
"""Share of ascending pairs above which the walk is a sorted sweep (chance is about 0.5)."""


def enumeration_evidence(actor: str, counts: ActorCounts) -> Evidence | None:
    return enumeration_from_fractions(actor, counts.order_pairs, counts.order_step, counts.order_ascending)


def enumeration_from_fractions(actor: str, pairs: int, steps: float, ascending: float) -> Evidence | None:
    """The enumeration finding from the share of neighbour steps and of ascending pairs among
    ``pairs`` consecutive record requests (the live engine's last 24, or a whole log)."""
    if pairs < MIN_PAIRS:
        return None
    if steps >= STEP_FRACTION:
        weight = 40.0 + 30.0 * (steps - STEP_FRACTION) / (1.0 - STEP_FRACTION)
        return Evidence(
            "enumeration",
            weight,
            f"{actor}: {steps:.0%} of the last {pairs} record ids were neighbours (sequential walk)",
            actor,
        )
    if ascending >= ASCENDING_FRACTION and pairs >= 2 * MIN_PAIRS:
        return Evidence(
            "enumeration",
            30.0,
            f"{actor}: {ascending:.0%} of the last {pairs} records came in ascending order (sorted sweep)",
            actor,
        )
    return None
