"""Trap paths: honeypot URLs linked invisibly and disallowed in robots.txt.

A person never sees the link and a polite crawler never follows it, so whoever asks for one is
a crawler that ignores robots.txt. The address stays marked for a while after the visit.
"""

from __future__ import annotations

from ..counters import TRAP_MEMORY_SECONDS, ActorCounts
from ..decision import Evidence

__all__ = ["TRAP_MEMORY_SECONDS", "trap_evidence"]


def trap_evidence(
    path: str, traps: frozenset[str], state: ActorCounts, now: float, weight: float
) -> Evidence | None:
    """The address asked for a trap path now, or did within TRAP_MEMORY_SECONDS (the counters
    mark it: :meth:`..counters.ActorState.observe`)."""
    if path in traps:
        return Evidence("trap", weight, f"requested trap path {path[:80]!r}", "ip")
    if state.trapped_until > now:
        return Evidence("trap", weight, "this address requested a trap path earlier", "ip")
    return None
