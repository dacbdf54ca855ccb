"""The Warden: one engine plus its state store, a clock and the event trail.

Every door (ASGI/WSGI middleware, proxy, forward-auth service, log analyzer) holds one Warden
and calls :meth:`Warden.decide_http` per request. STUB — being written.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

from .core.decision import Decision
from .core.engine import Engine
from .core.facts import RequestFacts
from .core.policy import Policy


class Warden:
    def __init__(
        self,
        policy: Policy | str | Path | None = None,
        *,
        state: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if isinstance(policy, (str, Path)):
            from .policy_file import load_policy

            policy = load_policy(policy)
        self.policy: Policy = policy or Policy()
        self.engine = Engine(self.policy)
        self.clock = clock

    def decide_http(
        self,
        *,
        peer: str,
        method: str,
        path: str,
        query: str,
        headers: Sequence[tuple[bytes, bytes]],
        account_id: str | None = None,
        account_created: float | None = None,
    ) -> Decision:
        """Decide on one raw HTTP request. Never raises on bad input."""
        from .core.http_facts import facts_from_http

        facts = facts_from_http(
            self.policy,
            now=self.clock(),
            peer=peer,
            method=method,
            path=path,
            query=query,
            headers=headers,
            account_id=account_id,
            account_created=account_created,
        )
        return self.decide(facts)

    def decide(self, facts: RequestFacts) -> Decision:
        return self.engine.decide(facts)
