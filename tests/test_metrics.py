"""The metrics a Warden feeds, scraped over real HTTP from the metrics server on loopback.

Every Warden in a process feeds the same (default) registry, so these tests compare a scrape
before with one after, and count only what they did in between.
"""

from __future__ import annotations

import asyncio
import http.client
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from scrapewarden.bench.redis_servers import RedisMissing, RedisServer
from scrapewarden.core.decision import Action
from scrapewarden.core.policy import Policy
from scrapewarden.doors.proxy_decider import reloaded_warden
from scrapewarden.metrics import StateReading, StateWatch
from scrapewarden.metrics_http import exposed_registry, start_metrics_server
from scrapewarden.warden import Warden

BROWSER = [
    (b"user-agent", b"Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"),
    (b"accept", b"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
    (b"accept-language", b"en-GB,en;q=0.5"),
    (b"accept-encoding", b"gzip, deflate"),
    (b"sec-fetch-dest", b"document"),
    (b"sec-fetch-mode", b"navigate"),
    (b"sec-fetch-site", b"none"),
]
SCRIPT = [(b"user-agent", b"python-requests/2.32"), (b"accept", b"*/*")]

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def get(port: int, path: str, method: str = "GET") -> tuple[int, str, str]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request(method, path)
        reply = connection.getresponse()
        return reply.status, reply.getheader("Content-Type") or "", reply.read().decode()
    finally:
        connection.close()


def scrape(port: int) -> Samples:
    status, _, text = get(port, "/metrics")
    assert status == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def metrics_port() -> Iterator[int]:
    server = start_metrics_server("127.0.0.1", 0)
    try:
        yield server.bound[1]
    finally:
        server.stop()


def test_a_scrape_counts_decisions_by_action_and_detector(metrics_port: int) -> None:
    warden = Warden(Policy(), state="memory://")
    before = scrape(metrics_port)
    findings: dict[str, int] = {}
    for i in range(12):
        headers = BROWSER if i % 3 else SCRIPT
        decision = warden.decide_http(
            peer=f"198.51.100.{i}", method="GET", path=f"/page/{i}", query="", headers=headers
        )
        for evidence in decision.evidence:
            findings[evidence.detector] = findings.get(evidence.detector, 0) + 1
    after = scrape(metrics_port)
    warden.close()

    assert warden.actions[Action.ALLOW] == 8 and warden.actions[Action.ALLOW] < warden.decisions
    for action in Action:
        grown = value(after, "scrapewarden_decisions_total", action=action.label) - value(
            before, "scrapewarden_decisions_total", action=action.label
        )
        assert grown == warden.actions[action], action
    assert findings  # the scripts were noticed, by name
    for detector, count in findings.items():
        grown = value(after, "scrapewarden_detector_findings_total", detector=detector) - value(
            before, "scrapewarden_detector_findings_total", detector=detector
        )
        assert grown == count, detector
    timed = value(after, "scrapewarden_decision_seconds_count") - value(
        before, "scrapewarden_decision_seconds_count"
    )
    assert timed == 12
    # Every decision lands in some bucket, and the first bucket is finer than a millisecond.
    assert value(after, "scrapewarden_decision_seconds_bucket", le="+Inf") == value(
        after, "scrapewarden_decision_seconds_count"
    )
    assert ("scrapewarden_decision_seconds_bucket", (("le", "1e-05"),)) in after


def test_a_challenge_answer_is_counted_by_outcome_and_kind(metrics_port: int) -> None:
    warden = Warden(Policy(), state="memory://")
    before = scrape(metrics_port)
    reply = warden.challenges.verify({"challenge": "forged", "nonce": "1"}, "198.51.100.9", "Mozilla/5.0")
    nojs = warden.challenges.verify({"challenge": "forged", "nojs": "1"}, "198.51.100.9", "Mozilla/5.0")
    after = scrape(metrics_port)
    warden.close()
    assert reply.status == 403 and nojs.status == 403

    def grown(outcome: str, how: str) -> float:
        name = "scrapewarden_challenges_total"
        return value(after, name, outcome=outcome, how=how) - value(before, name, outcome=outcome, how=how)

    assert grown("failed", "pow") == 1
    assert grown("failed", "nojs") == 1
    assert grown("passed", "pow") == 0


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


def test_state_health_follows_redis_and_survives_a_policy_reload(redis: RedisServer) -> None:
    """Degraded while Redis is away and back to 0 after; a reload replaces the Warden (sharing
    its store, with new shared counters) and the failure totals do not go back."""
    watch = StateWatch()
    warden = Warden(Policy(), state=f"{redis.url}?prefix=metrics-reload&timeout=0.05")
    watch.add(warden)

    async def decide(on: Warden, n: int) -> None:
        for i in range(n):
            await on.decide_http_async(
                peer=f"198.51.100.{i}", method="GET", path="/", query="", headers=BROWSER
            )

    async def run() -> tuple[StateReading, ...]:
        await decide(warden, 3)
        healthy = watch.read()
        redis.stop()
        await decide(warden, 5)
        away = watch.read()
        reloaded = reloaded_warden(warden, Policy())
        watch.add(reloaded)
        watch.discard(warden)
        replaced = watch.read()
        await decide(reloaded, 4)
        still_away = watch.read()
        redis.start()
        # Redis is tried again a moment after a failure (at most 2 s later).
        deadline = time.monotonic() + 10
        back = watch.read()
        while (back.degraded["counters"] or back.degraded["store"]) and time.monotonic() < deadline:
            await decide(reloaded, 1)
            await asyncio.sleep(0.1)
            back = watch.read()
        reloaded.close()
        return healthy, away, replaced, still_away, back

    healthy, away, replaced, still_away, back = asyncio.run(run())
    assert healthy.degraded == {"store": False, "counters": False}
    assert healthy.failures == {"store": 0, "counters": 0}
    # A failed call is counted; the requests right after it are decided locally without one.
    assert away.degraded["counters"] and 1 <= away.failures["counters"] <= 5
    assert replaced.failures["counters"] == away.failures["counters"]  # the old ones are kept
    # The new Warden, made while Redis is away, counts locally until it has the shared keys
    # (its counters are not even asked meanwhile); the store says Redis is away.
    assert still_away.degraded["store"] or still_away.degraded["counters"]
    assert still_away.failures["counters"] >= away.failures["counters"]
    assert back.degraded["counters"] is False
    assert back.failures["counters"] >= still_away.failures["counters"]
    assert still_away.failures["store"] >= away.failures["store"]


def test_a_warden_without_redis_reports_no_state_health() -> None:
    watch = StateWatch()
    warden = Warden(Policy(), state="memory://")
    watch.add(warden)
    reading = watch.read()
    warden.close()
    assert reading.degraded == {} and reading.outbox is None


FORKING = """
import os, sys
from scrapewarden.core.policy import Policy
from scrapewarden.warden import Warden

warden = Warden(Policy(), state="memory://")  # made before the fork, as under gunicorn --preload
headers = [(b"user-agent", b"python-requests/2.32")]

def decide(n, who):
    for i in range(n):
        warden.decide_http(peer=f"198.51.100.{who}", method="GET", path=f"/{i}", query="", headers=headers)

decide(3, 1)
child = os.fork()
if child == 0:
    decide(2, 2)
    sys.exit(0)  # a normal exit: the last sync runs
_, status = os.waitpid(child, 0)
sys.exit(os.waitstatus_to_exitcode(status))
"""


def test_processes_add_up_in_multiprocess_mode_forked_children_included(tmp_path: Path) -> None:
    """Several processes writing to one directory, one of them forked after the Warden was made:
    the sum is every decision once (the child does not report its parent's again)."""
    import os
    import subprocess
    import sys

    directory = tmp_path / "metrics"
    directory.mkdir()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)}
    done = subprocess.run([sys.executable, "-c", FORKING], env=env, capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr.decode()
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in exposed_registry(str(directory)).collect()
        for sample in family.samples
    }
    assert len(list(directory.glob("counter_*.db"))) == 2  # one file per process
    decided = sum(value(samples, "scrapewarden_decisions_total", action=a.label) for a in Action)
    assert decided == 5
    assert value(samples, "scrapewarden_decision_seconds_count") == 5
    assert value(samples, "scrapewarden_detector_findings_total", detector="client.bot_ua") == 5
