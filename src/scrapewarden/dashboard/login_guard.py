"""Login attempts held to budgets by scrapewarden's own engine.

Password guessing is scraping of a kind: many requests for one thing from one actor. So a
login attempt goes through a Warden of its own, with a policy made for the login form:

* the actors are the client address (and its network, once a second address shows up) and
  the *account* it tries, i.e. the user name typed;
* the only detector that fires is the per-actor request rate (no user-agent or address-list
  checks: operators log in from scripts and datacenters too);
* at the budget an attempt is throttled; at twice the budget it is blocked, and repeated
  blocks ban the *address* with the engine's escalating bans (never the user name: that would
  let anyone lock the real person out for good).

An attempt the guard refuses never reaches the password check. The guard's events and bans
live in its own in-process store, so they never mix with the site's trail.

Where the attempts are counted: when the dashboard's store is Redis (shared by every dashboard
process behind a load balancer), on Redis — the Warden's shared counters
(:mod:`scrapewarden.state.redis.counters`) under a key prefix of their own
(``<prefix>:login``, so they never mix with the site's counts), actors named by the
dashboard's keyed pseudonyms (the same key in every process) — so all processes together hold
an address or a name to *one* budget, and the offences that lead to a ban add up across them
too. Otherwise (SQLite, memory: one host, usually one process), in this process's memory. If
Redis does not answer in time, an attempt is counted in this process, as a site's requests are.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..core.decision import Action, Decision
from ..core.engine import Engine
from ..core.policy import ActorLimits, BanPolicy, Limits, NetworkPolicy, Policy
from ..state.base import StateStore
from ..state.memory import MemoryStore
from ..warden import Warden, shared_counters

LOGIN_PATH = "/login"


@dataclass(frozen=True, slots=True)
class LoginBudget:
    per_address_per_minute: int = 10
    per_name_per_minute: int = 5
    per_network_per_minute: int = 30
    blocks_before_ban: int = 10
    ban_seconds: int = 900


def _limits(rpm: int) -> ActorLimits:
    # Login attempts name no protected record: the record budgets never come into play.
    return ActorLimits(requests_per_minute=rpm, profiles_per_hour=10**6, profiles_per_day=10**6)


def login_policy(budget: LoginBudget, network: NetworkPolicy | None = None) -> Policy:
    """The policy the guard's engine runs. ``network``: the site's (trusted proxies), so the
    address counted is the client's, not the TLS proxy's."""
    per_ip = _limits(budget.per_address_per_minute)
    return Policy(
        network=network or NetworkPolicy(),
        limits=Limits(
            per_ip=per_ip,
            per_network=_limits(budget.per_network_per_minute),
            per_account=_limits(budget.per_name_per_minute),
            per_session=per_ip,
            per_fingerprint=_limits(budget.per_network_per_minute),
        ),
        actions={
            "bans": BanPolicy(
                blocks_before_ban=budget.blocks_before_ban, ttl_seconds=budget.ban_seconds, scopes=["ip"]
            )
        },
        allow={"paths": []},
        traps={"paths": []},
        # Its trail stays in its own memory: no sample of allowed attempts to replay.
        privacy={"record_allowed_share": 0},
    )


class LoginGuard:
    def __init__(
        self,
        budget: LoginBudget | None = None,
        *,
        network: NetworkPolicy | None = None,
        clock: Callable[[], float] = time.time,
        shared: StateStore | None = None,
        name: Callable[[str, str], str] | None = None,
    ) -> None:
        """``shared``: the dashboard's store; when it is Redis the attempts are counted there,
        actors named by ``name`` (the dashboard Warden's keyed pseudonyms: the same in every
        process, which a key of the guard's own in-process store would not be)."""
        policy = login_policy(budget or LoginBudget(), network)
        counters = None
        if shared is not None and name is not None:
            prefix = getattr(getattr(shared, "config", None), "prefix", "sw")
            counters = shared_counters(shared, name, prefix=f"{prefix}:login")
        # No client or address-list checkers: only the per-actor budgets decide.
        self.warden = Warden(
            policy, state=MemoryStore(), engine=Engine(policy), clock=clock, counters=counters
        )

    @property
    def shared(self) -> bool:
        """True when attempts are counted on Redis, for every dashboard process on it."""
        return self.warden.counters is not None

    def check(self, *, peer: str, name: str, headers: Sequence[tuple[bytes, bytes]]) -> Decision:
        """Count one attempt by ``peer`` at user ``name``; ALLOW or the refusal with its reasons."""
        facts = self.warden.facts_http(
            peer=peer,
            method="POST",
            path=LOGIN_PATH,
            query="",
            headers=headers,
            account_id=name.strip().lower()[:64] or "-",
        )
        # On the shared counters when there are some (waiting at most their deadline), else here.
        return self.warden.decide_shared_sync(facts)

    @staticmethod
    def refused(decision: Decision) -> bool:
        return decision.action is not Action.ALLOW

    def close(self) -> None:
        self.warden.close()
