"""Shared per-actor counters on a real redis-server: the Lua script agrees with the in-process
counters, two instances share one budget, and a lost Redis degrades to local counting."""

from __future__ import annotations

import asyncio
import hashlib
import random
from dataclasses import fields
from typing import Any

import httpx
import pytest
from redis_servers import RedisCluster, RedisServer

from scrapewarden.core.counters import ActorState, CountsSnapshot, Observation
from scrapewarden.core.decision import Action, Decision
from scrapewarden.core.engine import Engine
from scrapewarden.core.facts import RequestFacts
from scrapewarden.core.policy import Policy, ProtectedResource
from scrapewarden.state.redis.counters import RedisCounters
from scrapewarden.warden import Warden

T0 = 1_800_000_000.0
CHROME = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36"
)


def counters(url: str, *, timeout: float = 1.0, prefix: str = "", lean: bool = False) -> RedisCounters:
    """Shared counters on ``url``; ``prefix`` keeps tests sharing one server apart."""
    import redis.asyncio as aioredis

    if url.startswith("redis+cluster://"):
        from redis.asyncio.cluster import ClusterNode, RedisCluster

        nodes = [ClusterNode(h, int(p)) for h, p in (n.split(":") for n in url[16:].split("/")[0].split(","))]
        client: Any = RedisCluster(startup_nodes=nodes, socket_timeout=1.0)
        if lean:  # one lean connection per node, as the Warden does
            from dataclasses import replace

            from scrapewarden.state.redis.config import parse_redis_url
            from scrapewarden.state.redis.resp import RespConnection

            config = parse_redis_url(url, url)

            def node(host: str, port: int) -> RespConnection:
                return RespConnection(replace(config, mode="single", nodes=((host, port),)))

            run = prefix or str(random.random())
            return RedisCounters(client, name=lambda kind, key: f"{run}:{key}", timeout=timeout, node=node)
    else:
        client = aioredis.Redis.from_url(url, socket_timeout=1.0)
    run = prefix or str(random.random())
    fast = None
    if lean:  # the lean RESP connection the Warden uses on a single server
        from scrapewarden.state.redis.config import parse_redis_url
        from scrapewarden.state.redis.resp import RespConnection

        fast = RespConnection(parse_redis_url(url, url))
    return RedisCounters(client, name=lambda kind, key: f"{run}:{key}", timeout=timeout, fast=fast)


def policy() -> Policy:
    return Policy(
        protected=[ProtectedResource(pattern="/users/{id}")],
        traps={"paths": ["/.trap"]},
        limits={
            "per_ip": {"requests_per_minute": 120, "profiles_per_hour": 40, "profiles_per_day": 200},
            "per_fingerprint": {"requests_per_minute": 600, "profiles_per_hour": 45, "profiles_per_day": 300},
        },
    )


def traffic(n: int, seed: int) -> list[RequestFacts]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        now = T0 + i * 0.7
        who = rng.random()
        if who < 0.3:  # a sequential walker on one address
            ip, path, ua = "203.0.113.9", f"/users/{i % 40}", "python-requests/2.31"
        elif who < 0.4:
            ip, path, ua = "192.0.2.77", "/.trap" if rng.random() < 0.1 else "/", CHROME
        else:  # people: pages and their assets
            ip = f"10.{rng.randrange(3)}.0.{rng.randrange(1, 12)}"
            path = rng.choice(["/", "/static/app.css", f"/users/{rng.randrange(30)}", "/static/app.js"])
            ua = CHROME
        headers = (("user-agent", ua), ("accept", "text/html"), ("accept-language", "en"))
        out.append(RequestFacts(now=now, ip=ip, path=path, user_agent=ua, headers=headers))
    return out


@pytest.mark.parametrize("where", ["single", "single-lean", "cluster", "cluster-lean"])
def test_the_lua_counters_judge_like_the_engines_own(
    where: str, redis_server: RedisServer, redis_cluster: RedisCluster
) -> None:
    """While distinct counts stay exact (under 48 per window), Redis and the engine agree exactly."""
    own, shared = Engine(policy()), Engine(policy())
    url = redis_cluster.url if where.startswith("cluster") else redis_server.url
    store = counters(url, lean=where.endswith("lean"))

    observed = 0

    async def run() -> set[Action]:
        nonlocal observed
        seen = set()
        for facts in traffic(1500, seed=3):
            expected = own.decide(facts)
            step = shared.begin(facts)
            if isinstance(step, Decision):
                got = step
            else:
                observed += 1
                counted = await store.observe(step.actors, step.observation)
                assert counted is not None
                got = shared.finish(step, counted)
            assert (got.action, round(got.score, 3)) == (expected.action, round(expected.score, 3)), (
                facts.path
            )
            seen.add(got.action)
        await store.client.aclose()
        return seen

    actions = asyncio.run(run())
    assert {Action.ALLOW, Action.BLOCK} <= actions
    assert store.failures == 0
    # One round trip per decision on a single server (requests in flight together would share
    # one); on a Cluster one per node the request's actors live on.
    if where.startswith("single"):
        assert store.calls == observed
    else:
        assert observed < store.calls <= 3 * observed


def test_two_instances_share_one_budget(redis_server: RedisServer) -> None:
    """A walker alternating between two instances is stopped after as many records as one."""

    async def records_before_refused(wardens: list[Warden]) -> int:
        for n in range(1, 400):
            facts = RequestFacts(
                now=T0 + n * 2.0,
                ip="203.0.113.50",
                path=f"/users/{random.Random(n).randrange(10**6)}",
                user_agent=CHROME,
                headers=(("user-agent", CHROME), ("accept", "text/html"), ("accept-language", "en")),
            )
            decision = await wardens[n % len(wardens)].decide_async(facts)
            if decision.action is not Action.ALLOW:
                return n
        return 0

    async def run() -> tuple[int, int]:
        alone = await records_before_refused([Warden(policy(), state="memory://")])
        run = str(random.random())  # both instances under one name: one budget
        shared = [counters(redis_server.url, prefix=run) for _ in range(2)]
        pair = [Warden(policy(), state="memory://", counters=c) for c in shared]
        together = await records_before_refused(pair)
        for c in shared:
            await c.client.aclose()
        return alone, together

    alone, together = asyncio.run(run())
    assert 0 < alone < 400
    assert abs(together - alone) <= 1, (alone, together)


def test_a_lost_redis_degrades_to_local_counting_and_comes_back(own_redis: RedisServer) -> None:
    redis_server = own_redis

    async def run() -> None:
        store = counters(redis_server.url, timeout=0.05)
        warden = Warden(policy(), state="memory://", counters=store)
        facts = traffic(200, seed=9)
        for f in facts[:50]:
            await warden.decide_async(f)
        assert store.failures == 0 and store.degraded_since is None
        redis_server.stop()
        loop = asyncio.get_running_loop()
        for f in facts[50:150]:  # every request still gets a decision, none waits long
            started = loop.time()
            decision = await warden.decide_async(f)
            assert isinstance(decision, Decision)
            assert loop.time() - started < 1.0
        assert store.failures > 0 and store.degraded_since is not None
        redis_server.start()
        for f in facts[150:]:
            await warden.decide_async(f)
        # Redis is tried again a moment after each failure (at most 2 s later): shared again.
        deadline = loop.time() + 10
        while store.degraded_since is not None and loop.time() < deadline:
            await asyncio.sleep(0.1)
            await warden.decide_async(facts[-1])
        assert store.degraded_since is None
        await store.client.aclose()

    asyncio.run(run())


def test_two_middleware_apps_on_one_redis_stop_a_walker_like_one(redis_server: RedisServer) -> None:
    """Real HTTP: two ASGI apps (each its own Warden, opened from the same redis:// state URL),
    and a walker alternating between them; it is refused after as many records as one app lets
    through on its own (± one)."""
    import socket
    import threading
    import time

    import uvicorn

    from scrapewarden.doors.asgi import ScrapeWardenMiddleware

    async def site(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/html")]}
        )
        await send({"type": "http.response.body", "body": b"<h1>a person</h1>"})

    def serve(app: Any) -> tuple[str, Any]:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        config = uvicorn.Config(app, lifespan="off", log_level="warning", access_log=False)
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        deadline = time.monotonic() + 20
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline
            time.sleep(0.01)
        return f"http://127.0.0.1:{sock.getsockname()[1]}", (server, thread, sock)

    def walk(urls: list[str]) -> int:
        headers = {"user-agent": CHROME, "accept": "text/html", "accept-language": "en"}
        with httpx.Client(headers=headers, timeout=10) as client:
            for n in range(1, 400):
                reply = client.get(f"{urls[n % len(urls)]}/users/{random.Random(n).randrange(10**6)}")
                if reply.status_code != 200:
                    return n
        return 0

    # Each run gets fresh counters: its own key prefix on the shared server.
    state = f"{redis_server.url}?prefix=walk{random.randrange(10**9)}"
    started = []
    try:
        alone_url, handle = serve(ScrapeWardenMiddleware(site, policy(), state="memory://"))
        started.append(handle)
        alone = walk([alone_url])
        pair = []
        for _ in range(2):
            url, handle = serve(ScrapeWardenMiddleware(site, policy(), state=state))
            started.append(handle)
            pair.append(url)
        together = walk(pair)
    finally:
        for server, thread, sock in started:
            server.should_exit = True
            thread.join(10)
            sock.close()
    assert 0 < alone < 400
    assert abs(together - alone) <= 1, (alone, together)


def observations(n: int, seed: int) -> list[tuple[str, Observation]]:
    """Requests of a few actors over three days: pages, assets, trap hits, records viewed in
    sequence and at random, revisits, and gaps that roll every window (minute, hour, day)."""
    rng = random.Random(seed)
    now = T0
    out = []
    for _ in range(n):
        gaps = [0.2, 1.0, 7.0, 45.0, 70.0, 900.0, 4000.0, 30000.0, 90000.0]
        now += rng.choice(gaps[: rng.randrange(3, 10)])
        kind = rng.choice(["ip", "account", "network"])
        shape = rng.random()
        if shape < 0.15:
            obs = Observation(now, True, False, False)
        elif shape < 0.2:
            obs = Observation(now, False, True, rng.random() < 0.5)
        else:
            record_id = str(rng.randrange(30)) if rng.random() < 0.7 else rng.choice(["ann", "bob", "zed"])
            digest = int.from_bytes(hashlib.sha256(record_id.encode()).digest()[:8], "big") >> 1
            obs = Observation(now, False, True, False, digest, "profile", record_id)
        out.append((kind, obs))
    return out


@pytest.mark.parametrize("where", ["single-lean", "cluster", "cluster-lean"])
def test_the_lua_counts_equal_the_in_process_counts(
    where: str, redis_server: RedisServer, redis_cluster: RedisCluster
) -> None:
    """Every count the detectors read, compared value by value after each request, across
    window rolls (minute, hour, day), trap hits, revisits and more than 24 ordered pairs."""
    url = redis_cluster.url if where.startswith("cluster") else redis_server.url
    store = counters(url, lean=where.endswith("lean"))
    states: dict[str, ActorState] = {}

    async def run() -> int:
        compared = 0
        for kind, obs in observations(1200, seed=11):
            state = states.setdefault(kind, ActorState(obs.now))
            state.observe(obs, kind)
            got = await store.observe([(kind, "actor")], obs)
            assert got is not None
            want = CountsSnapshot.of(state)
            for field in fields(CountsSnapshot):
                a, b = getattr(got[0], field.name), getattr(want, field.name)
                assert a == pytest.approx(b, rel=1e-9, abs=1e-6), (field.name, kind, obs)
            compared += 1
        await store.client.aclose()
        return compared

    assert asyncio.run(run()) == 1200
    assert max(s.order_pairs for s in states.values()) == 24


def test_the_lua_distinct_counts_follow_the_in_process_ones_past_the_exact_limit(
    redis_server: RedisServer,
) -> None:
    """Beyond 48 distinct records a window turns into a HyperLogLog on both sides (Redis's own
    and the engine's): the estimates stay within a few per cent of each other and of the truth."""
    store = counters(redis_server.url, lean=True)
    state = ActorState(T0)

    async def run() -> tuple[float, float]:
        got = None
        for i in range(600):
            digest = random.Random(i).getrandbits(63)
            obs = Observation(T0 + i, False, True, False, digest, "profile", f"u{i}")
            state.observe(obs, "account")
            got = await store.observe([("account", "walker")], obs)
            assert got is not None
        await store.client.aclose()
        assert got is not None
        return got[0].seen_hour, got[0].seen_day

    hour, day = asyncio.run(run())
    assert hour == pytest.approx(600, rel=0.05) and day == pytest.approx(600, rel=0.05)
    assert hour == pytest.approx(state.seen_hour, rel=0.08)


def test_a_frozen_redis_makes_few_requests_wait(own_redis: RedisServer) -> None:
    """A server that stops answering (SIGSTOP) without closing its connections: after the first
    request runs into the deadline, the next ones are decided locally at once until the next
    try, instead of each waiting out the deadline in turn."""
    redis_server = own_redis

    async def run() -> None:
        store = counters(redis_server.url, timeout=0.05, lean=True)
        warden = Warden(policy(), state="memory://", counters=store)
        facts = traffic(300, seed=4)
        for f in facts[:50]:
            await warden.decide_async(f)
        redis_server.pause()
        try:
            for f in facts[50:250]:
                assert isinstance(await warden.decide_async(f), Decision)
        finally:
            redis_server.resume()
        assert store.degraded_since is not None
        assert store.skipped >= 100, store.skipped  # decided at once, not after the deadline
        assert store.failures <= 10, store.failures
        await asyncio.sleep(2.5)  # past the longest pause between tries
        for f in facts[250:]:
            await warden.decide_async(f)
        assert store.degraded_since is None  # counting on Redis again
        await store.client.aclose()

    asyncio.run(run())
