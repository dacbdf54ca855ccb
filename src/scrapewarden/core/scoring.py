"""From evidence to a risk score (0-100) and from a score to an action.

Weights combine like independent probabilities ("noisy OR"): two findings of 30 give 51, not
60, and no pile of weak hints ever exceeds 100. A single strong finding (a trap hit, a ban, a
budget overrun by 2x) decides on its own; weak ones (a datacenter address, no Accept-Language)
only matter together.
"""

from __future__ import annotations

from collections.abc import Iterable

from .decision import Action, Evidence
from .policy import Thresholds

LIMIT_WARN_RATIO = 0.7
"""Below this share of a budget, using it says nothing."""
LIMIT_WARN_WEIGHT = 25.0
"""Weight just below a budget: not an action alone (the default throttle threshold is 30)."""
LIMIT_OVER_WEIGHT = 35.0
"""Weight at the budget: a throttle alone. Rises to 85 (block) at twice the budget."""


def combine(evidence: Iterable[Evidence]) -> float:
    """Noisy-OR of the evidence weights, on a 0-100 scale."""
    keep = 1.0
    for item in evidence:
        weight = item.weight
        if weight >= 100.0:
            return 100.0
        if weight > 0.0:
            keep *= 1.0 - weight / 100.0
    return round(100.0 * (1.0 - keep), 2)


def action_for(score: float, thresholds: Thresholds) -> Action:
    if score >= thresholds.block:
        return Action.BLOCK
    if score >= thresholds.challenge:
        return Action.CHALLENGE
    if score >= thresholds.throttle:
        return Action.THROTTLE
    return Action.ALLOW


def limit_weight(ratio: float) -> float:
    """Weight for having used ``ratio`` of a budget (1.0 = exactly the budget)."""
    if ratio < LIMIT_WARN_RATIO:
        return 0.0
    if ratio < 1.0:
        return LIMIT_WARN_WEIGHT * (ratio - LIMIT_WARN_RATIO) / (1.0 - LIMIT_WARN_RATIO)
    return LIMIT_OVER_WEIGHT + 50.0 * min(1.0, ratio - 1.0)
