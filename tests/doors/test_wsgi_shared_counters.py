"""The WSGI middleware on shared counters: two apps on one Redis hold a scraper to one budget,
and a Redis that stops answering mid-traffic holds up no request beyond its deadline.

Real parts: werkzeug's threaded server on loopback, a real redis-server, real HTTP. The
middleware is synchronous; it reaches the asyncio counters through the Warden's loop thread
(:meth:`scrapewarden.warden.Warden.decide_shared_sync`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
import requests
from walking import BROWSER, POLICY, walk

from scrapewarden.bench.redis_servers import RedisServer
from scrapewarden.doors.wsgi import ScrapeWardenWSGIMiddleware
from scrapewarden.warden import Warden


def site(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/html")])
    return [b"<h1>a person</h1>"]


def test_a_walker_alternating_between_two_wsgi_apps_meets_one_budget(
    redis: RedisServer, tmp_path: Path, run_wsgi: Callable[..., Any]
) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text(POLICY)
    alone_warden = Warden(str(policy), state="memory://")
    with run_wsgi(ScrapeWardenWSGIMiddleware(site, warden=alone_warden)) as alone_url:
        alone = walk([alone_url])
    alone_warden.close()

    state = f"{redis.url}?prefix=wsgi"
    one, two = Warden(str(policy), state=state), Warden(str(policy), state=state)
    try:
        assert one.counters is not None and two.counters is not None
        with (
            run_wsgi(ScrapeWardenWSGIMiddleware(site, warden=one)) as one_url,
            run_wsgi(ScrapeWardenWSGIMiddleware(site, warden=two)) as two_url,
        ):
            together = walk([one_url, two_url])
        # Counted on Redis, not locally: no call missed its deadline.
        assert one.counters.calls > 0 and two.counters.calls > 0
        assert one.counters.failures == 0 and two.counters.failures == 0
    finally:
        one.close()
        two.close()
    assert 10 < alone < 300  # the record budget stopped it, not its first request
    assert abs(together - alone) <= 1, (alone, together)


@pytest.mark.parametrize("outage", ["stopped", "frozen"])
def test_a_redis_lost_mid_traffic_holds_up_no_request(
    redis: RedisServer, tmp_path: Path, outage: str, run_wsgi: Callable[..., Any]
) -> None:
    """Four client threads keep browsing while Redis goes away (killed, or frozen so that
    connections hang unanswered): every request is still answered, each within a bound set by
    the state URL's deadlines (50 ms per counters call, 200 ms for the store's bulk calls) and
    far below what waiting on a dead server would take."""
    policy = tmp_path / "policy.toml"
    policy.write_text(POLICY)
    state = f"{redis.url}?prefix=outage&timeout=0.05&connect_timeout=0.05&bulk_timeout=0.2"
    warden = Warden(str(policy), state=state)
    counters = warden.counters
    assert counters is not None
    slowest: list[float] = []
    statuses: list[int] = []
    lock = threading.Lock()
    gone = threading.Event()

    def browse(url: str, me: int) -> None:
        with requests.Session() as session:
            for n in range(60):  # bounded in count; about half of them after the outage
                if n == 30:
                    gone.wait(10)
                started = time.monotonic()
                # Pages, not records: one person reading, well inside every budget.
                reply = session.get(f"{url}/about/{me}/{n % 20}", headers=BROWSER, timeout=10)
                took = time.monotonic() - started
                with lock:
                    statuses.append(reply.status_code)
                    slowest.append(took)

    try:
        with run_wsgi(ScrapeWardenWSGIMiddleware(site, warden=warden)) as url:
            threads = [threading.Thread(target=browse, args=(url, me)) for me in range(4)]
            for thread in threads:
                thread.start()
            deadline = time.monotonic() + 20
            while len(statuses) < 40 and time.monotonic() < deadline:
                time.sleep(0.01)
            calls_before = counters.calls
            if outage == "stopped":
                redis.stop()
            else:
                redis.pause()
            gone.set()
            for thread in threads:
                thread.join(60)
            assert not any(thread.is_alive() for thread in threads)
    finally:
        if outage == "frozen":
            redis.resume()
        warden.close()
    assert len(statuses) == 240 and set(statuses) == {200}, statuses
    assert calls_before > 0  # counted on Redis before the outage
    assert counters.failures > 0 and counters.degraded_since is not None  # and locally after it
    # Measured: under 0.11 s (a counters call and a ban reload, each at its 50 ms deadline).
    # The bound leaves slack for a shared two-core machine, yet is far
    # below a request that waited for the frozen server (which never answers).
    assert max(slowest) < 1.0, sorted(slowest)[-5:]


def test_a_worker_forked_after_the_first_request_counts_on_redis_too(redis: RedisServer) -> None:
    """A pre-forking server that loaded the app (and served a request) before forking: the
    worker gets its own loop thread and connections, and still counts on Redis."""
    import os

    from scrapewarden.core.facts import RequestFacts

    warden = Warden(None, state=f"{redis.url}?prefix=fork&timeout=0.5")
    assert warden.counters is not None

    def facts(n: int) -> RequestFacts:
        return RequestFacts(now=time.time(), ip="192.0.2.8", method="GET", path=f"/p/{n}", user_agent="x")

    warden.decide_shared_sync(facts(0))
    parent = warden.counters
    assert parent.calls == 1 and parent.failures == 0
    pid = os.fork()
    if pid == 0:
        try:
            for n in range(1, 4):
                warden.decide_shared_sync(facts(n))
            child = warden.counters
            os._exit(0 if child is not parent and child.calls == 3 and child.failures == 0 else 1)
        except BaseException:
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    warden.decide_shared_sync(facts(9))  # the parent's connections are still its own
    assert parent.calls == 2 and parent.failures == 0
    warden.close()
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
