"""Trap paths: honeypot URLs linked invisibly and disallowed in robots.txt.

A person never sees the link and a polite crawler never follows it, so whoever asks for one is
a crawler that ignores robots.txt. The address stays marked for a while after the visit.
"""

from __future__ import annotations

from ..counters import ActorState
from ..decision import Evidence

TRAP_MEMORY_SECONDS = 6 * 3600.0


def trap_evidence(
    path: str, traps: frozenset[str], state: ActorState, now: float, weight: float
) -> Evidence | None:
    if path in traps:
        state.trapped_until = now + TRAP_MEMORY_SECONDS
        return Evidence("trap", weight, f"requested trap path {path[:80]!r}", "ip")
    if state.trapped_until > now:
        return Evidence("trap", weight, "this address requested a trap path earlier", "ip")
    return None
