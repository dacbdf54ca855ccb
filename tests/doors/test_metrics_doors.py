"""``/metrics`` on every door, over real HTTP on loopback.

The authz service and the proxy run as real processes (``--metrics-listen``), the proxy with a
real redis-server that the tests stop and start again; the middlewares' ``metrics_app`` runs
under real uvicorn and werkzeug servers.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
import uvicorn
from challenge_helpers import answer, read_page
from prometheus_client.parser import text_string_to_metric_families
from proxy_fixtures import DEADLINE, OutputReader, free_port, run_proxy, serve_upstream

from scrapewarden.bench.redis_servers import RedisServer
from scrapewarden.doors.asgi import metrics_app as asgi_metrics_app
from scrapewarden.doors.wsgi import metrics_app as wsgi_metrics_app

BROWSER = {
    "User-Agent": "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "Accept-Language": "en-GB,en;q=0.5",
    "Accept-Encoding": "gzip, deflate",
    "Sec-Fetch-Dest": "document",
    "Sec-Fetch-Mode": "navigate",
    "Sec-Fetch-Site": "same-origin",
    "Sec-Fetch-User": "?1",
}
SCRIPT = {"User-Agent": "python-requests/2.32", "Accept": "*/*"}
ACTIONS = ("allow", "throttle", "challenge", "block")

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def scrape(port: int) -> Samples:
    """The metrics at ``127.0.0.1:port/metrics``, waiting (bounded) for the server to listen."""
    deadline = time.monotonic() + DEADLINE
    while True:
        try:
            reply = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
            break
        except requests.ConnectionError:
            assert time.monotonic() < deadline, "no metrics server"
            time.sleep(0.05)
    assert reply.status_code == 200
    return parse(reply.text)


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def decisions(samples: Samples) -> dict[str, float]:
    return {a: value(samples, "scrapewarden_decisions_total", action=a) or 0.0 for a in ACTIONS}


def wait_for(what: str, condition: Callable[[], bool], *, nudge: Callable[[], object] = lambda: None) -> None:
    """Until ``condition()``, calling ``nudge()`` between tries; bounded by DEADLINE."""
    deadline = time.monotonic() + DEADLINE
    while not condition():
        assert time.monotonic() < deadline, f"never {what}"
        nudge()
        time.sleep(0.1)


# -- the forward-auth service ---------------------------------------------------------------------------


def _caddy_auth(uri: str, client: str, headers: dict[str, str]) -> dict[str, str]:
    return {
        **headers,
        "X-Forwarded-Method": "GET",
        "X-Forwarded-Uri": uri,
        "X-Forwarded-Host": "shop.example",
        "X-Forwarded-Proto": "http",
        "X-Forwarded-For": client,
    }


def test_authz_serves_metrics_on_its_own_port(tmp_path: Path) -> None:
    port, metrics_port = free_port(), free_port()
    exe = Path(sys.executable).parent / "scrapewarden"
    log = tmp_path / "authz.log"
    command = [
        str(exe),
        "authz",
        "--listen",
        f"127.0.0.1:{port}",
        "--metrics-listen",
        f"127.0.0.1:{metrics_port}",
    ]
    process = subprocess.Popen(command, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    try:
        start = scrape(metrics_port)
        assert sum(decisions(start).values()) == 0
        said: dict[str, int] = {}
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, timeout=10) as client:
            for i in range(9):
                headers = BROWSER if i % 3 else SCRIPT
                reply = client.get("/auth", headers=_caddy_auth(f"/page/{i}", f"198.51.100.{i}", headers))
                action = reply.headers["X-ScrapeWarden-Action"]
                said[action] = said.get(action, 0) + 1
            # A script that asks for a page gets the challenge page; it answers once wrongly and
            # once rightly (through the proxy's /.sw/ route, here straight to authz).
            html_script = {**SCRIPT, "Accept": "text/html"}
            page = client.get("/auth", headers=_caddy_auth("/records", "198.51.100.77", html_script))
            action = page.headers["X-ScrapeWarden-Action"]
            said[action] = said.get(action, 0) + 1
            challenge = read_page(page.text)
            pages = {**html_script, "X-Forwarded-For": "198.51.100.77", "X-Forwarded-Proto": "http"}
            wrong = client.post("/.sw/verify", data={**answer(challenge), "nonce": "x"}, headers=pages)
            right = client.post("/.sw/verify", data=answer(challenge), headers=pages)
        assert wrong.status_code == 403 and right.status_code == 303
        after = scrape(metrics_port)
        assert said.get("allow", 0) == 6 and len(said) > 1
        assert decisions(after) == {a: float(said.get(a, 0)) for a in ACTIONS}
        assert value(after, "scrapewarden_challenges_total", outcome="passed", how="pow") == 1
        assert value(after, "scrapewarden_challenges_total", outcome="failed", how="pow") == 1
        assert value(after, "scrapewarden_decision_seconds_count") == sum(said.values())
        assert (value(after, "scrapewarden_detector_findings_total", detector="client.bot_ua") or 0) >= 1
        # The auth port itself does not serve them: /metrics there is a request to decide on.
        with httpx.Client(timeout=10) as client:
            reply = client.get(f"{base}/metrics", headers=BROWSER)
        assert "scrapewarden_decisions_total" not in reply.text
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0, log.read_text()
    assert f"metrics on http://127.0.0.1:{metrics_port}/metrics" in log.read_text()


# -- the proxy ------------------------------------------------------------------------------------------


def _get(url: str, headers: dict[str, str]) -> int:
    # A connection each, so the kernel spreads requests over the workers.
    return requests.get(url, headers={**headers, "Connection": "close"}, timeout=10).status_code


def test_proxy_reports_redis_loss_and_recovery(redis: RedisServer) -> None:
    """One process with shared counters on Redis: degraded 1 while Redis is stopped, failures
    counted, decisions going on; 0 again once it is back."""
    metrics_port = free_port()
    state = f"{redis.url}?prefix=metrics-single"
    with (
        serve_upstream() as (port, _),
        run_proxy(port, "--state", state, "--metrics-listen", f"127.0.0.1:{metrics_port}") as (_, url),
    ):
        for i in range(5):
            assert _get(f"{url}/page/{i}", BROWSER) == 200
        healthy = scrape(metrics_port)
        assert value(healthy, "scrapewarden_state_degraded", part="counters") == 0
        assert value(healthy, "scrapewarden_state_degraded", part="store") == 0
        assert value(healthy, "scrapewarden_state_failures_total", part="counters") == 0
        assert value(healthy, "scrapewarden_state_outbox") is not None
        assert decisions(healthy)["allow"] == 5

        redis.stop()
        for i in range(5):
            assert _get(f"{url}/away/{i}", BROWSER) == 200  # decided on local state meanwhile
        away = scrape(metrics_port)
        assert value(away, "scrapewarden_state_degraded", part="counters") == 1
        # At least one failed call (the requests right after a failure are decided locally at once).
        assert (value(away, "scrapewarden_state_failures_total", part="counters") or 0) >= 1
        assert decisions(away)["allow"] == 10

        redis.start()
        wait_for(
            "shared counters back",
            lambda: value(scrape(metrics_port), "scrapewarden_state_degraded", part="counters") == 0,
            nudge=lambda: _get(f"{url}/back", BROWSER),
        )
        wait_for(
            "the store back",
            lambda: value(scrape(metrics_port), "scrapewarden_state_degraded", part="store") == 0,
            nudge=lambda: _get(f"{url}/back", BROWSER),
        )


def test_proxy_workers_add_up_every_process_and_clean_up(
    redis: RedisServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--workers 2: the supervisor serves the sum of the processes' files. Counts survive the
    decider's death and restart (the new decider's files add to the dead one's); the state's
    health comes from the decider; the multiprocess directory goes with the proxy."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))  # where the proxy makes its private directory
    metrics_port = free_port()
    state = f"{redis.url}?prefix=metrics-workers"
    args = ("--workers", "2", "--state", state, "--metrics-listen", f"127.0.0.1:{metrics_port}")
    with serve_upstream() as (port, seen), run_proxy(port, *args) as (proc, url):
        output = OutputReader(proc)
        output.wait_for("connected (2 in all)")  # both workers ask the decider (else they let through)
        statuses = [_get(f"{url}/page/{i}", BROWSER if i % 4 else SCRIPT) for i in range(24)]
        # Each process adds its counts to its files about once a second.
        wait_for("24 decisions in the sum", lambda: sum(decisions(scrape(metrics_port)).values()) == 24)
        first = scrape(metrics_port)
        assert value(first, "scrapewarden_decision_seconds_count") == 24
        assert value(first, "scrapewarden_decision_seconds_bucket", le="+Inf") == 24
        assert 0 < (value(first, "scrapewarden_decision_seconds_sum") or 0) < 24
        assert decisions(first)["allow"] == statuses.count(200) and 0 < statuses.count(200) < 24
        assert len(seen.peers) >= 2  # both workers carried traffic
        metrics_dir = next(scratch.glob("scrapewarden-proxy-*/metrics"))
        assert any(metrics_dir.glob("counter_*.db"))

        # The decider dies; the supervisor starts another. Its predecessor's counts stay.
        pid = int(
            next(line for line in output.lines if "decider pid" in line)
            .split("decider pid ")[1]
            .split(",")[0]
        )
        seen_lines = len(output.lines)
        os.kill(pid, signal.SIGKILL)
        wait_for(
            "a new decider with both workers",
            lambda: any("connected (2 in all)" in line for line in output.lines[seen_lines:]),
        )
        for i in range(6):
            assert _get(f"{url}/again/{i}", BROWSER) == 200
        wait_for("30 decisions in the sum", lambda: sum(decisions(scrape(metrics_port)).values()) == 30)
        assert value(scrape(metrics_port), "scrapewarden_decision_seconds_count") == 30

        # The state's health, copied from the decider into the files about once a second.
        redis.stop()
        wait_for(
            "degraded counters in the sum",
            lambda: value(scrape(metrics_port), "scrapewarden_state_degraded", part="counters") == 1,
            nudge=lambda: _get(f"{url}/away", BROWSER),
        )
        redis.start()
        wait_for(
            "the counters back in the sum",
            lambda: value(scrape(metrics_port), "scrapewarden_state_degraded", part="counters") == 0,
            nudge=lambda: _get(f"{url}/back", BROWSER),
        )
        assert (value(scrape(metrics_port), "scrapewarden_state_failures_total", part="counters") or 0) >= 1
    assert not list(scratch.iterdir())  # the private directory, metrics included, is gone


# -- the middlewares' metrics_app -----------------------------------------------------------------------


@contextmanager
def serve_asgi(app: Any) -> Iterator[str]:
    """``app`` under a real uvicorn on loopback, in a thread."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, lifespan="off", log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    wait_for("uvicorn started", lambda: server.started or not thread.is_alive())
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(DEADLINE)
        sock.close()


@contextmanager
def serve_wsgi(app: Any) -> Iterator[str]:
    """``app`` under werkzeug's real threaded server on loopback."""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(DEADLINE)
        server.server_close()


def _status(url: str) -> int:
    connection = http.client.HTTPConnection(url.removeprefix("http://"), timeout=10)
    try:
        connection.request("GET", "/")
        reply = connection.getresponse()
        body = reply.read()
        if reply.status == 200:
            assert b"scrapewarden_decisions_total" in body
        return reply.status
    finally:
        connection.close()


@pytest.mark.parametrize("serve, make", [(serve_asgi, asgi_metrics_app), (serve_wsgi, wsgi_metrics_app)])
def test_metrics_app_answers_loopback_and_the_networks_it_is_told(serve: Callable, make: Callable) -> None:
    with serve(make()) as url:
        assert _status(url) == 200  # loopback by default
    with serve(make(allow=["192.0.2.0/24"])) as url:
        assert _status(url) == 403
    with serve(make(allow=None)) as url:
        assert _status(url) == 200


def test_metrics_app_refuses_other_methods() -> None:
    with serve_asgi(asgi_metrics_app()) as url:
        assert requests.post(url, timeout=10).status_code == 405
    with serve_wsgi(wsgi_metrics_app()) as url:
        assert requests.post(url, timeout=10).status_code == 405
