"""Two scrapewarden proxies on one Redis ban a scraper after one count of refusals.

Real processes (`scrapewarden proxy --state redis://…`, one of them with two workers and a
decider), a real redis-server on loopback, real HTTP. A scripted client asking for a trap path
alternately through the two proxies is refused every time; the automatic ban reaches the shared
store after ``blocks_before_ban`` refusals in all, as on one instance, not that many per proxy.
"""

from __future__ import annotations

import time
from pathlib import Path

import redis as redis_py
import requests
from proxy_fixtures import run_proxy, serve_upstream

from scrapewarden.bench.redis_servers import RedisServer

BANS_AFTER = 4
POLICY = f"""
mode = "enforce"
[traps]
paths = ["/.trap"]
[actions.bans]
blocks_before_ban = {BANS_AFTER}
"""
BAN_WAIT = 3.0
"""Seconds to wait for a ban after a refusal: the offence is counted in the background."""


def test_a_scraper_refused_by_two_proxies_is_banned_after_one_count(
    redis: RedisServer, tmp_path: Path
) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text(POLICY)
    state = f"{redis.url}?prefix=proxies"
    bans = redis_py.Redis.from_url(redis.url)

    def banned(within: float) -> bool:
        deadline = time.monotonic() + within
        while True:
            if bans.zcard("{proxies:bans}:expiry"):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)

    with (
        serve_upstream() as (port, _),
        run_proxy(port, "--policy", str(policy), "--state", state) as (_, one),
        run_proxy(port, "--policy", str(policy), "--state", state, "--workers", "2") as (_, two),
        requests.Session() as scraper,
    ):
        refusals = 0
        for n in range(1, 3 * BANS_AFTER):
            reply = scraper.get(
                f"{(one, two)[n % 2]}/.trap", headers={"User-Agent": "python-requests/2.32"}, timeout=10
            )
            assert reply.status_code in (403, 429), reply.status_code
            if banned(BAN_WAIT if n >= BANS_AFTER else 0.3):
                refusals = n
                break
    bans.close()
    assert refusals == BANS_AFTER  # not 2 × BANS_AFTER: the proxies count one budget of offences
