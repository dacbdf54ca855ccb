"""Redis killed under load behind a real scrapewarden proxy: people never notice.

A proxy with two workers and a decider on a real redis-server, real HTTP from several people
browsing at once (each from their own address, pages and their assets), and a walker. Redis is
killed (SIGKILL) in the middle and started again later: every person's request is answered 200
throughout, decisions continue while it is away, and once it is back the proxy counts on it again
(the walker's later records land in Redis) without refusing anyone by mistake.
"""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

import redis as redis_py
import requests
from proxy_fixtures import run_proxy, serve_upstream
from walking import BROWSER

from scrapewarden.bench.redis_servers import RedisServer

POLICY = """
mode = "enforce"
[network]
trusted_proxies = ["127.0.0.1/32"]
[[protected]]
pattern = "/users/{id}"
[limits.per_ip]
requests_per_minute = 600
profiles_per_hour = 60
profiles_per_day = 300
"""
PEOPLE = 6


def person(url: str, n: int, stop: threading.Event, answers: list[int]) -> None:
    """Browse like a person from 10.1.0.n: a page, its assets, a profile now and then."""
    rng = random.Random(n)
    headers = {**BROWSER, "X-Forwarded-For": f"10.1.0.{n}"}
    assets = {**headers, "Accept": "text/css,*/*;q=0.1", "Sec-Fetch-Dest": "style"}
    with requests.Session() as session:
        for _ in range(400):  # bounded: the test stops it well before
            if stop.is_set():
                return
            # Profiles of a site with many members: six people from one /24 picking among 50
            # ids made neighbouring ids (within 8) a coin toss, and now and then, right after the
            # restart emptied the network's order tracker, its first 8 pairs read as a walk.
            path = rng.choice(["/", "/feed", f"/users/{rng.randrange(20_000)}"])
            answers.append(session.get(url + path, headers=headers, timeout=10).status_code)
            answers.append(session.get(url + "/static/app.css", headers=assets, timeout=10).status_code)
            time.sleep(0.3)


def test_people_browse_on_while_redis_is_killed_and_restarted(redis: RedisServer, tmp_path: Path) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text(POLICY)
    state = f"{redis.url}?prefix=outage"
    probe = redis_py.Redis(port=redis.port)
    with (
        serve_upstream() as (port, _),
        run_proxy(port, "--policy", str(policy), "--state", state, "--workers", "2") as (_, url),
    ):
        stop = threading.Event()
        answers: list[list[int]] = [[] for _ in range(PEOPLE)]
        threads = [
            threading.Thread(target=person, args=(url, n + 1, stop, answers[n]), daemon=True)
            for n in range(PEOPLE)
        ]
        for t in threads:
            t.start()
        try:
            time.sleep(2)
            assert probe.keys("outage:c:*"), "the proxy counts on Redis before the outage"
            before = sum(map(len, answers))
            redis.proc.kill()  # SIGKILL: no goodbye
            redis.proc.wait()
            time.sleep(3)
            during = sum(map(len, answers)) - before
            redis.start()  # same port, empty (no persistence): the shared counts start over
            probe = redis_py.Redis(port=redis.port)
            deadline = time.monotonic() + 15
            while not probe.keys("outage:c:*"):
                assert time.monotonic() < deadline, "the proxy never counted on Redis again"
                time.sleep(0.2)
            time.sleep(1)
        finally:
            stop.set()
            for t in threads:
                t.join(timeout=20)
    statuses = [s for person_answers in answers for s in person_answers]
    assert during > 20, "decisions continued while Redis was away"
    assert len(statuses) > 100
    assert set(statuses) == {200}, {s: statuses.count(s) for s in set(statuses)}
