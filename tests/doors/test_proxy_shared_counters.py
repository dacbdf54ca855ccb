"""Two scrapewarden proxies on one Redis hold a scraper to one budget.

Real processes (`scrapewarden proxy --state redis://…`, one of them with two workers and a
decider), a real redis-server on loopback, real HTTP. A walker alternating between the two
proxies is refused after as many records as a single proxy with its own memory lets through
(± one): the issue's measure of shared state.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from proxy_fixtures import run_proxy, serve_upstream

from scrapewarden.bench.redis_servers import RedisMissing, RedisServer

BROWSER = {
    "User-Agent": "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "Accept-Language": "en-GB,en;q=0.5",
    "Sec-Fetch-Dest": "document",
    "Sec-Fetch-Mode": "navigate",
    "Sec-Fetch-Site": "same-origin",
    "Sec-Fetch-User": "?1",
}
"""A browser's headers: only the walk itself should give the walker away."""
POLICY = """
mode = "enforce"
[[protected]]
pattern = "/users/{id}"
[limits.per_ip]
requests_per_minute = 600
profiles_per_hour = 40
profiles_per_day = 200
"""


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    try:
        server = RedisServer(tmp_path).start()
    except RedisMissing as missing:
        pytest.skip(str(missing))
    try:
        yield server
    finally:
        server.stop()


def walk(urls: list[str]) -> int:
    """Records fetched before the first refusal, alternating between ``urls``."""
    with requests.Session() as session:
        for n in range(1, 300):
            reply = session.get(
                f"{urls[n % len(urls)]}/users/{random.Random(n).randrange(10**6)}",
                headers=BROWSER,
                timeout=10,
            )
            if reply.status_code != 200:
                return n
    return 0


def test_a_walker_alternating_between_two_proxies_meets_one_budget(
    redis: RedisServer, tmp_path: Path
) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text(POLICY)
    with serve_upstream() as (port, _):
        with run_proxy(port, "--policy", str(policy), "--state", "memory://") as (_, alone_url):
            alone = walk([alone_url])
        state = f"{redis.url}?prefix=proxies"
        with (
            run_proxy(port, "--policy", str(policy), "--state", state) as (_, one),
            run_proxy(port, "--policy", str(policy), "--state", state, "--workers", "2") as (_, two),
        ):
            together = walk([one, two])
    assert 10 < alone < 300  # the record budget stopped it, not its first request
    assert abs(together - alone) <= 1, (alone, together)
