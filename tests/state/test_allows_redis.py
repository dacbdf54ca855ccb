"""Operator allows on Redis through Wardens: one process allows, the serving one (counting on
the shared counters) lets the actor through from its next ban reload, still counting it; an
outage keeps the allows last seen in force and refuses new ones loudly."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from redis_servers import RedisCluster, RedisServer

from scrapewarden.core.decision import Action
from scrapewarden.core.facts import RequestFacts
from scrapewarden.core.policy import Policy, ProtectedResource
from scrapewarden.state.redis.store import StateUnavailableError
from scrapewarden.warden import Warden

T0 = 1_800_000_000.0
BOT = "python-requests/2.32.3"
SCRAPER = "203.0.113.77"


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def policy() -> Policy:
    return Policy(protected=[ProtectedResource(pattern="/users/{id}")])


def facts(clock: Clock, n: int) -> RequestFacts:
    clock.now += 0.5
    return RequestFacts(
        now=clock.now, ip=SCRAPER, path=f"/users/{n}", user_agent=BOT, headers=(("user-agent", BOT),)
    )


def _url(server: RedisServer | RedisCluster) -> str:
    # A timeout far above the 20 ms default: this test is about allows, not about a loaded
    # machine's slow replies tripping the store into its outage mode.
    sep = "&" if "?" in server.url else "?"
    return f"{server.url}{sep}prefix=t-{uuid.uuid4().hex[:12]}&timeout=1"


@pytest.mark.parametrize("where", ["single", "cluster"])
def test_an_allow_from_another_process_is_picked_up_by_a_serving_warden(
    where: str, request: pytest.FixtureRequest
) -> None:
    url = _url(request.getfixturevalue("redis_cluster" if where == "cluster" else "redis_server"))
    clock = Clock()

    async def run() -> None:
        serving = Warden(policy(), state=url, clock=clock)
        assert serving.counters is not None  # deciding on the shared counters
        dashboard = Warden(policy(), state=url, clock=clock)
        try:
            dashboard.ban("ip", SCRAPER, ttl=None, reason="scraping", by="ana")
            clock.now += 5
            assert (await serving.decide_async(facts(clock, 1))).action is Action.BLOCK
            dashboard.allow("ip", SCRAPER, ttl=3600, reason="research contract", by="ana")
            clock.now += 5  # the serving Warden's next reload
            allowed = [await serving.decide_async(facts(clock, n)) for n in range(2, 12)]
            assert all(d.action is Action.ALLOW and d.overridden is Action.BLOCK for d in allowed)
            assert allowed[-1].reasons()[0] == "allowed by an operator (ip), overriding block"
            assert dashboard.lift_allow("ip", SCRAPER, by="ana") is True
            clock.now += 5
            assert (await serving.decide_async(facts(clock, 12))).action is Action.BLOCK
            actions = [e.action for e in dashboard.store.audit_entries()]
            assert actions == ["ban.add", "allow.add", "allow.remove"]
        finally:
            serving.close()
            dashboard.close()

    asyncio.run(run())


def test_an_outage_keeps_allows_in_force_and_refuses_new_ones(own_redis: RedisServer) -> None:
    url = f"{own_redis.url}?prefix=t-{uuid.uuid4().hex[:12]}&timeout=0.05"
    clock = Clock()
    warden = Warden(policy(), state=url, clock=clock)
    try:
        warden.ban("ip", SCRAPER, ttl=None, by="ana")
        warden.allow("ip", SCRAPER, ttl=None, by="ana")
        clock.now += 5
        assert warden.decide(facts(clock, 1)).action is Action.ALLOW
        own_redis.stop()
        for n in range(2, 6):  # reloads fall back to the allows last seen
            clock.now += 3
            assert warden.decide(facts(clock, n)).allow_key == f"ip:{SCRAPER}"
        with pytest.raises(StateUnavailableError):
            warden.allow("ip", "192.0.2.1", ttl=None, by="ana")
        with pytest.raises(StateUnavailableError):
            warden.lift_allow("ip", SCRAPER, by="ana")
    finally:
        own_redis.start()
        warden.close()
