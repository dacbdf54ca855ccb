"""Two scrapewarden proxies on one Redis hold a scraper to one budget.

Real processes (`scrapewarden proxy --state redis://…`, one of them with two workers and a
decider), a real redis-server on loopback, real HTTP. A walker alternating between the two
proxies is refused after as many records as a single proxy with its own memory lets through
(± one): the issue's measure of shared state.
"""

from __future__ import annotations

from pathlib import Path

from proxy_fixtures import run_proxy, serve_upstream
from walking import POLICY, walk

from scrapewarden.bench.redis_servers import RedisServer


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
