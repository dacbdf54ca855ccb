"""What else the engine counts, shared on a real redis-server: offences for automatic bans,
networks used by several addresses, the site-wide asset tally; and keys made while Redis was
down, which converge on the shared ones once it is back.

Each test's Wardens open the same ``redis://`` state URL (its own key prefix), as instances of
one site do: store, shared counters and tallies all on that Redis.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable

import pytest
import redis
from redis_servers import RedisCluster, RedisServer

from scrapewarden.core.clearance import new_clearance
from scrapewarden.core.decision import Action, Decision
from scrapewarden.core.engine import SITE_ASSETS_MIN, Pending
from scrapewarden.core.facts import RequestFacts
from scrapewarden.core.policy import Policy
from scrapewarden.state.redis.tallies import NETWORK_ASK_AFTER, NETWORK_ASK_EVERY
from scrapewarden.warden import BAN_REFRESH_MIN_WALL, Warden

T0 = 1_800_000_000.0
CHROME = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36"
)
SCRIPT = "python-requests/2.31"
BANS_AFTER = 5


def policy() -> Policy:
    return Policy(traps={"paths": ["/.trap"]}, actions={"bans": {"blocks_before_ban": BANS_AFTER}})


def facts(now: float, ip: str, path: str, ua: str = CHROME) -> RequestFacts:
    headers = (("user-agent", ua), ("accept", "text/html"), ("accept-language", "en"))
    return RequestFacts(now=now, ip=ip, path=path, user_agent=ua, headers=headers)


def state_url(server: RedisServer | RedisCluster) -> str:
    return f"{server.url}?prefix=t{random.randrange(10**9)}&timeout=0.5"


@pytest.fixture(params=["single", "cluster"])
def redis_any(request: pytest.FixtureRequest) -> RedisServer | RedisCluster:
    """The session's single server, or its Cluster (every tally's keys share one hash tag)."""
    name = "redis_cluster" if request.param == "cluster" else "redis_server"
    server: RedisServer | RedisCluster = request.getfixturevalue(name)
    return server


async def decide(warden: Warden, f: RequestFacts) -> Decision:
    """Decide, then wait for the background asks (networks, assets) this request started."""
    decision = await warden.decide_async(f)
    if warden.tallies is not None:
        await warden.tallies.settle()
    return decision


def close(*wardens: Warden) -> None:
    for warden in wardens:
        warden.close()


# -- offences -------------------------------------------------------------------------------------


def banned(warden: Warden, ip: str, now: float) -> bool:
    return any(ban.kind == "ip" and ban.value == ip for ban in warden.store.list_bans(now))


async def refusals_before_ban(wardens: list[Warden]) -> int:
    """A scripted client asking for a trap path, alternating between ``wardens``: how many
    refusals until the ban is in the store (one store for all of them, or the only one)."""
    for n in range(1, 40):
        d = await decide(wardens[n % len(wardens)], facts(T0 + n, "203.0.113.66", "/.trap", SCRIPT))
        assert d.action >= Action.CHALLENGE
        if banned(wardens[0], "203.0.113.66", T0 + n):
            return n
    return 0


def test_an_actor_refused_alternately_on_two_instances_is_banned_after_as_many_offences_as_on_one(
    redis_any: RedisServer | RedisCluster,
) -> None:
    async def run() -> None:
        alone = Warden(policy(), state="memory://")
        n_alone = await refusals_before_ban([alone])
        url = state_url(redis_any)
        pair = [Warden(policy(), state=url) for _ in range(2)]
        n_pair = await refusals_before_ban(pair)
        assert n_alone == BANS_AFTER
        assert n_pair == n_alone, (n_alone, n_pair)  # not 2 × BANS_AFTER: one count for both
        assert all(p.tallies is not None and p.tallies.failures == 0 for p in pair)
        # The instance that imposed it refuses at once; the other one from its next ban refresh
        # (every 2 s of request time, and at least BAN_REFRESH_MIN_WALL real seconds apart),
        # through the store.
        await asyncio.sleep(BAN_REFRESH_MIN_WALL)
        for w in pair:
            later = await decide(w, facts(T0 + n_pair + 3, "203.0.113.66", "/"))
            assert later.action is Action.BLOCK and later.ban_key == "ip:203.0.113.66"
        close(alone, *pair)

    asyncio.run(run())


def test_offences_are_counted_locally_while_redis_is_away_and_no_ban_bursts_when_it_returns(
    own_redis: RedisServer,
) -> None:
    async def run() -> None:
        url = state_url(own_redis).replace("timeout=0.5", "timeout=0.05")
        warden = Warden(policy(), state=url)
        assert warden.tallies is not None
        ip = "203.0.113.70"
        for n in range(1, BANS_AFTER - 1):  # BANS_AFTER - 2 offences, counted on Redis
            await decide(warden, facts(T0 + n, ip, "/.trap", SCRIPT))
        assert warden.tallies.failures == 0 and not banned(warden, ip, T0 + n)
        own_redis.pause()  # frozen: every call now meets the deadline
        try:
            started = time.monotonic()
            for n in range(BANS_AFTER - 1, BANS_AFTER + 1):  # two more, counted in the process
                d = await decide(warden, facts(T0 + n, ip, "/.trap", SCRIPT))
                assert d.action >= Action.CHALLENGE and not d.new_bans
            assert time.monotonic() - started < 5.0
        finally:
            own_redis.resume()
        assert not banned(warden, ip, T0 + 10)  # the local count (2) is under the threshold
        # Back on Redis: its count resumes where it was (3); the local ones stay local.
        await wait_for(lambda: _answers(warden) and warden.tallies is not None and not warden.tallies.paused)
        await decide(warden, facts(T0 + 20, ip, "/.trap", SCRIPT))
        assert not banned(warden, ip, T0 + 20)
        await decide(warden, facts(T0 + 21, ip, "/.trap", SCRIPT))
        assert banned(warden, ip, T0 + 21)
        close(warden)

    asyncio.run(run())


def _answers(warden: Warden) -> bool:
    """True once Redis answers again (a PING through a fresh client)."""
    client = redis.Redis.from_url(warden.store.url.split("?")[0], socket_timeout=0.2)  # type: ignore[attr-defined]
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


# -- shared networks ------------------------------------------------------------------------------


def actors_of(warden: Warden, f: RequestFacts) -> list[str]:
    step = warden.engine.begin(f)
    assert isinstance(step, Pending)
    return [kind for kind, _ in step.actors]


def test_a_network_is_marked_shared_by_addresses_seen_on_different_instances(
    redis_any: RedisServer | RedisCluster,
) -> None:
    async def run() -> None:
        url = state_url(redis_any)
        a, b = Warden(policy(), state=url), Warden(policy(), state=url)
        await decide(a, facts(T0, "198.51.100.1", "/"))
        await decide(b, facts(T0 + 1, "198.51.100.1", "/"))  # the same address: still one
        assert "network" not in actors_of(b, facts(T0 + 2, "198.51.100.1", "/"))
        await decide(b, facts(T0 + 3, "198.51.100.2", "/"))  # B's first address... A had another
        assert "network" in actors_of(b, facts(T0 + 4, "198.51.100.2", "/"))
        # A has seen one address only; after more requests from it, it asks again and learns of B's.
        await decide(a, facts(T0 + 5, "198.51.100.1", "/"))
        assert "network" not in actors_of(a, facts(T0 + 6, "198.51.100.1", "/"))
        later = T0 + NETWORK_ASK_EVERY
        for n in range(NETWORK_ASK_AFTER):
            await decide(a, facts(later + n * 0.5, "198.51.100.1", "/"))
        assert "network" in actors_of(a, facts(later + 10, "198.51.100.1", "/"))
        # Another network, one address on each instance... the same one: never shared.
        await decide(a, facts(T0 + 30, "192.0.2.9", "/"))
        await decide(b, facts(T0 + 31, "192.0.2.9", "/"))
        assert "network" not in actors_of(b, facts(T0 + 32, "192.0.2.9", "/"))
        close(a, b)

    asyncio.run(run())


# -- the site-wide asset tally ----------------------------------------------------------------------


def test_assets_served_by_several_instances_add_up_to_one_site_wide_tally(
    redis_server: RedisServer,
) -> None:
    async def run() -> None:
        url = state_url(redis_server)
        a, b, c = (Warden(policy(), state=url) for _ in range(3))
        half = SITE_ASSETS_MIN // 2
        for i in range(half):
            await decide(a, facts(T0 + i, f"10.0.{i}.1", "/static/app.css"))
        for i in range(SITE_ASSETS_MIN - half - 1):
            await decide(b, facts(T0 + i, f"10.1.{i}.1", "/static/app.js"))
        assert not any(w.engine.site_assets_known for w in (a, b, c))  # one short, site-wide
        await decide(b, facts(T0 + 60, "10.2.0.1", "/static/logo.png"))
        assert b.engine.site_assets_known
        # The others learn it with their next requests (C has served no asset at all).
        await decide(a, facts(T0 + 70, "10.3.0.1", "/"))
        await decide(c, facts(T0 + 70, "10.3.0.2", "/"))
        assert a.engine.site_assets_known and c.engine.site_assets_known
        # Once known, nobody adds to the tally any more.
        tally = redis.Redis.from_url(redis_server.url)
        key = f"{url.split('prefix=')[1].split('&')[0]}:site:assets"
        assert int(tally.get(key) or 0) == SITE_ASSETS_MIN
        for w in (a, b, c):
            await decide(w, facts(T0 + 80, "10.3.0.1", "/static/app.css"))
        assert int(tally.get(key) or 0) == SITE_ASSETS_MIN
        tally.close()
        close(a, b, c)

    asyncio.run(run())


# -- keys made while Redis was down ------------------------------------------------------------------


async def wait_for(condition: Callable[[], bool], seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


def test_wardens_started_while_redis_is_down_converge_on_the_shared_keys_when_it_returns(
    own_redis: RedisServer,
) -> None:
    url = state_url(own_redis)
    own_redis.stop()
    clock = [T0]

    async def run() -> None:
        b, c = (Warden(policy(), state=url, clock=lambda: clock[0]) for _ in range(2))
        try:
            assert b.keys_provisional and c.keys_provisional
            # Each made keys of its own: pseudonyms and signatures differ.
            assert b.pseudonymizer.ip("192.0.2.1") != c.pseudonymizer.ip("192.0.2.1")
            assert b.challenges.key != c.challenges.key
            # A person clears a challenge on B during the outage.
            during = new_clearance(
                b.challenges.key, now=T0, ip="192.0.2.1", user_agent=CHROME, how="pow", hours=1.0
            )
            started = time.monotonic()
            await decide(b, facts(T0, "192.0.2.1", "/"))  # on local counters, without waiting
            assert time.monotonic() - started < 1.0

            own_redis.start()
            await wait_for(lambda: not b.store.degraded and not c.store.degraded)  # type: ignore[attr-defined]
            for step in range(1, 4):  # requests come in; the ban refresh (every 2 s) reads the keys
                clock[0] = T0 + step * 2.5
                for w in (b, c):
                    await decide(w, facts(clock[0], "192.0.2.1", "/"))
            assert not b.keys_provisional and not c.keys_provisional
            assert b.pseudonymizer.ip("192.0.2.1") == c.pseudonymizer.ip("192.0.2.1")
            assert b.challenges.key == c.challenges.key
            # ... and they are the keys in the store, which an instance started now reads.
            a = Warden(policy(), state=url, clock=lambda: clock[0])
            assert not a.keys_provisional
            assert a.pseudonymizer.ip("192.0.2.1") == b.pseudonymizer.ip("192.0.2.1")
            assert a.challenges.key == b.challenges.key
            # The cookie earned on B during the outage still clears on B (its key won, or it
            # keeps its own for checking); a cookie signed now clears on every instance.
            assert b.challenges.clearance(f"sw_clearance={during}", "192.0.2.1", CHROME) == "pow"
            signed_now = new_clearance(
                a.challenges.key, now=clock[0], ip="192.0.2.1", user_agent=CHROME, how="pow", hours=1.0
            )
            for w in (a, b, c):
                assert w.challenges.clearance(f"sw_clearance={signed_now}", "192.0.2.1", CHROME) == "pow"
            # Shared counting is on again: the counters are asked.
            assert b.counters is not None
            before = b.counters.calls
            await decide(b, facts(clock[0] + 1, "192.0.2.1", "/"))
            assert b.counters.calls > before
            close(a)
        finally:
            close(b, c)

    asyncio.run(run())


def test_a_key_already_shared_wins_over_one_made_during_an_outage(own_redis: RedisServer) -> None:
    """An instance started before the outage stored the keys; one started during it (Redis
    frozen) made its own, and takes the stored ones once Redis answers again."""
    url = state_url(own_redis)
    clock = [T0]

    async def run() -> None:
        first = Warden(policy(), state=url, clock=lambda: clock[0])
        own_redis.pause()
        try:
            late = Warden(policy(), state=url, clock=lambda: clock[0])
        finally:
            own_redis.resume()
        try:
            assert late.keys_provisional and not first.keys_provisional
            assert late.challenges.key != first.challenges.key
            await wait_for(lambda: not late.store.degraded)  # type: ignore[attr-defined]
            for step in range(1, 3):
                clock[0] = T0 + step * 2.5
                await decide(late, facts(clock[0], "192.0.2.1", "/"))
            assert not late.keys_provisional
            assert late.challenges.key == first.challenges.key
            assert late.pseudonymizer.ip("192.0.2.1") == first.pseudonymizer.ip("192.0.2.1")
            assert late.store.lost_settings == 2  # type: ignore[attr-defined]  # both of its keys lost
        finally:
            close(first, late)

    asyncio.run(run())


def test_synchronous_doors_count_offences_on_redis_through_the_loop_thread(redis_server: RedisServer) -> None:
    """WSGI and ``watch`` decide with ``decide_shared_sync``: the tallies' asks go to the
    Warden's loop thread, and two instances still ban after as many refusals as one."""
    url = state_url(redis_server)
    pair = [Warden(policy(), state=url) for _ in range(2)]

    def settle(w: Warden) -> None:
        assert w.tallies is not None
        w._loop_thread.submit(w.tallies.settle()).result(10)

    try:
        n_pair = 0
        for n in range(1, 40):
            w = pair[n % 2]
            d = w.decide_shared_sync(facts(T0 + n, "203.0.113.80", "/.trap", SCRIPT))
            assert d.action >= Action.CHALLENGE
            settle(w)
            if banned(pair[0], "203.0.113.80", T0 + n):
                n_pair = n
                break
        assert n_pair == BANS_AFTER
        assert all(w.tallies is not None and w.tallies.failures == 0 and w.tallies.calls > 0 for w in pair)
    finally:
        close(*pair)
