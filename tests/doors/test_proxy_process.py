"""``scrapewarden proxy`` as a real process: protection end to end, signals, workers, memory."""

from __future__ import annotations

import http.client
import os
import random
import signal
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
from proxy_fixtures import DEADLINE, OutputReader, run_proxy, serve_upstream

ROOT = Path(__file__).resolve().parents[2]
POLICY_FILE = ROOT / "examples" / "policy.toml"

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


@pytest.fixture
def upstream():
    with serve_upstream() as served:
        yield served


@contextmanager
def demo_site() -> Iterator[int]:
    import uvicorn

    from scrapewarden.demo.site import create_app

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_app(regime="none", people=2000), log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + DEADLINE
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "demo site did not start"
        time.sleep(0.02)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(DEADLINE)
        sock.close()


def _walk(session: requests.Session, url: str, ids: list[int]) -> tuple[int, int | None]:
    received = 0
    for record in ids:
        reply = session.get(f"{url}/users/{record}", timeout=10)
        if reply.status_code != 200:
            return received, reply.status_code
        received += 1
    return received, None


def test_walker_is_refused_and_a_person_browses_untroubled():
    """The demo site has never heard of scrapewarden; the proxy in front of it protects /users/{id}."""
    rng = random.Random(11)
    with demo_site() as site_port, run_proxy(site_port, "--policy", str(POLICY_FILE)) as (_, url):
        with requests.Session() as person:
            person.headers.update(BROWSER)
            person.cookies.set("session", "person-1")
            clicks = ["/", "/feed", "/search?q=an"]
            for record in rng.sample(range(1, 2001), 20):
                clicks += [f"/users/{record}", "/feed"]
            statuses = [person.get(url + path, timeout=10).status_code for path in clicks]
        assert statuses == [200] * len(clicks)

        with requests.Session() as walker:  # python-requests' own headers, sequential ids
            received, refusal = _walk(walker, url, list(range(1, 2001)))
    assert refusal in (403, 429)
    assert received < 50


def _budget_policy(path: Path, per_hour: int) -> Path:
    path.write_text(
        'mode = "enforce"\n'
        "[[protected]]\n"
        'pattern = "/users/{id}"\n'
        'kind = "profile"\n'
        "[limits.per_ip]\n"
        f"requests_per_minute = 100000\nprofiles_per_hour = {per_hour}\nprofiles_per_day = 100000\n"
    )
    return path


def test_two_workers_share_one_budget(upstream, tmp_path):
    """Each request on a new connection, so the kernel spreads them over both workers; the
    walker still gets one budget, not two."""
    port, seen = upstream
    budget = 30
    policy = _budget_policy(tmp_path / "policy.toml", budget)
    state = f"sqlite:///{tmp_path / 'state.db'}"
    with run_proxy(port, "--policy", str(policy), "--workers", "2", "--state", state) as (_, url):
        received = 0
        refusal = None
        # Random ids, so the budget (not the enumeration detector) is what stops the walker, and
        # enough connections go out that the kernel certainly spreads them over both workers.
        for record in random.Random(1).sample(range(1, 100_000), 4 * budget):
            reply = requests.get(
                f"{url}/users/{record}", headers={**BROWSER, "Connection": "close"}, timeout=10
            )
            if reply.status_code != 200:
                refusal = reply.status_code
                break
            received += 1
    assert refusal in (403, 429)
    assert received <= budget
    # Both workers carried traffic: each keeps its own upstream connections.
    assert len(seen.peers) >= 2


def test_sighup_reload_applies_a_new_policy_without_dropping_connections(upstream, tmp_path):
    port, seen = upstream
    policy = tmp_path / "policy.toml"
    policy.write_text('mode = "observe"\n')
    with run_proxy(port, "--policy", str(policy)) as (proc, url):
        log = OutputReader(proc)
        conn = http.client.HTTPConnection(
            url.removeprefix("http://").split(":")[0], int(url.rsplit(":", 1)[1])
        )
        conn.request("GET", "/.env", headers=BROWSER)  # a trap path: blocked when enforced
        first = conn.getresponse()
        first.read()
        before = conn.sock.getsockname()
        policy.write_text('mode = "enforce"\n')
        proc.send_signal(signal.SIGHUP)
        log.wait_for("policy reloaded (mode: enforce)")
        conn.request("GET", "/.env", headers=BROWSER)
        second = conn.getresponse()
        second.read()
        after = conn.sock.getsockname()
        conn.close()
    assert first.status == 200
    assert second.status == 403
    assert before == after  # the same keep-alive connection
    assert seen.paths.count("/.env") == 1


def test_graceful_shutdown_finishes_the_request_in_flight(upstream):
    port, seen = upstream
    with run_proxy(port, "--grace", "20") as (proc, url):
        result: dict[str, object] = {}

        def slow() -> None:
            reply = requests.get(f"{url}/slow?s=1.5", headers=BROWSER, timeout=30)
            result["status"], result["body"] = reply.status_code, reply.text

        thread = threading.Thread(target=slow)
        thread.start()
        deadline = time.monotonic() + DEADLINE
        while "/slow?s=1.5" not in seen.paths:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
        thread.join(DEADLINE)
        code = proc.wait(DEADLINE)
    assert result == {"status": 200, "body": "slow done"}
    assert code == 0


def _peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs /proc")
def test_large_bodies_do_not_grow_the_proxy_by_their_size(upstream, tmp_path):
    port, _ = upstream
    size = 50 * 1024 * 1024
    piece = b"\x5a" * (1 << 20)
    policy = tmp_path / "policy.toml"
    policy.write_text('mode = "observe"\n')
    with run_proxy(port, "--policy", str(policy)) as (proc, url):
        assert requests.post(f"{url}/upload", data=b"warm", timeout=10).status_code == 200
        baseline = _peak_rss_kib(proc.pid)
        up = requests.put(f"{url}/upload", data=iter([piece] * 50), timeout=60)
        assert up.json()["total"] == size
        with requests.get(f"{url}/download?size={size}", stream=True, timeout=60) as down:
            total = sum(len(block) for block in down.iter_content(1 << 16))
        assert total == size
        growth = _peak_rss_kib(proc.pid) - baseline
    assert growth < 16 * 1024, f"proxy peak memory grew by {growth} KiB for a {size // 2**20} MiB body"
