"""Event retention: how long the event trail keeps what it saw about people.

Events hold (possibly pseudonymised) addresses, paths and user agents: personal data, so they
are kept only as long as the policy says (``privacy.event_retention_days``, default 30).
"""

from __future__ import annotations

from ..core.policy import Policy
from .base import StateStore

DAY = 86400.0


def retention_seconds(policy: Policy) -> float:
    """How long events are kept under ``policy``, in seconds."""
    return policy.privacy.event_retention_days * DAY


def apply_retention(store: StateStore, policy: Policy, now: float) -> int:
    """Delete events older than the policy's retention period; returns how many were deleted."""
    return store.prune_events(now - retention_seconds(policy))
