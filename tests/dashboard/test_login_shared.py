"""Login budgets shared by dashboard processes on one Redis: attempts alternating between two
dashboard apps (real HTTP, a real redis-server) are refused after one budget, not two."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from scrapewarden.bench.redis_servers import RedisMissing, RedisServer
from scrapewarden.dashboard.accounts import add_user
from scrapewarden.dashboard.app import create_app
from scrapewarden.dashboard.login_guard import LoginBudget
from scrapewarden.state.url import open_state

from .conftest import PASSWORD, csrf_of, serve, site_policy

BUDGET = LoginBudget(per_address_per_minute=50, per_name_per_minute=3, per_network_per_minute=100)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    try:
        server = RedisServer(tmp_path / "redis").start()
    except RedisMissing as missing:
        pytest.skip(str(missing))
    try:
        yield server
    finally:
        server.stop()


def _attempts(state_url: str, count: int) -> tuple[list[int], list[bool]]:
    """``count`` wrong-password attempts at one name, alternating between two dashboard apps on
    ``state_url``; their status codes, and whether each app's guard counted on shared counters."""
    store = open_state(state_url)
    try:
        add_user(store, "ada", "admin", PASSWORD, now=time.time())
        store.flush()
    finally:
        store.close()
    apps = [create_app(state_url, policy=site_policy(), login_budget=BUDGET) for _ in range(2)]
    served = [serve(app) for app in apps]
    try:
        clients = [httpx.Client(base_url=s.url, timeout=10) for s in served]
        tokens = [csrf_of(c.get("/login").text) for c in clients]
        codes = []
        for i in range(count):
            client, token = clients[i % 2], tokens[i % 2]
            answer = client.post("/login", data={"csrf": token, "name": "ada", "password": "wrong guess!!"})
            codes.append(answer.status_code)
        for client in clients:
            client.close()
        guards = [app.state.dashboard.guard for app in apps]
        if guards[0].shared:
            # Counted on Redis, not locally: no call missed its deadline.
            assert all(g.warden.counters.calls > 0 and g.warden.counters.failures == 0 for g in guards)
        return codes, [g.shared for g in guards]
    finally:
        for one, app in zip(served, apps, strict=True):
            one.stop()
            app.state.dashboard.close()


def test_two_dashboards_on_one_redis_share_one_login_budget(redis_server: RedisServer) -> None:
    # A generous deadline: this test is about sharing, not about a slow machine's Redis.
    codes, shared = _attempts(f"{redis_server.url}?prefix=dash&timeout=1", 6)
    assert shared == [True, True]
    # Three attempts at "ada" in all (the per-name budget), then refused by whichever app is
    # asked; two separate budgets would have let six through (three per app).
    assert codes[:2] == [401, 401]
    assert codes[3:] == [429, 429, 429], codes


def test_the_login_counts_do_not_mix_with_the_sites(redis_server: RedisServer) -> None:
    import redis

    codes, _ = _attempts(f"{redis_server.url}?prefix=mix&timeout=1", 4)
    assert codes[-1] == 429
    with redis.Redis(port=redis_server.port, decode_responses=True) as client:
        counted = [k for k in client.keys("*") if ":c:{" in k]
    # The guard's counters sit under a prefix of their own, never among the site's (mix:c:...),
    # and name actors by pseudonym: no address or user name in a key.
    assert counted and all(k.startswith("mix:login:c:{") for k in counted), counted
    assert not [k for k in counted if "127.0.0.1" in k or "ada" in k]


def test_on_sqlite_each_process_counts_its_own(tmp_path: Path) -> None:
    codes, shared = _attempts(f"sqlite:///{tmp_path}/state.db", 6)
    assert shared == [False, False]
    # Each app holds its own budget of three: the fourth attempt (the second app's second) passes.
    assert codes[3] == 401 and codes[-1] == 429
