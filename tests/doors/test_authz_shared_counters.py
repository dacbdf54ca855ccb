"""Two forward-auth services on one Redis hold a scraper to one budget.

Real processes (`scrapewarden authz --state redis://…`), a real redis-server on loopback, real
HTTP. The walker's requests are described to the services as nginx's ``auth_request`` describes
them; alternating between the two services, it is refused after as many records as a single
service with its own memory lets through (± one), as for the proxy
(tests/doors/test_proxy_shared_counters.py).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests
from walking import BROWSER, POLICY, walk

from scrapewarden.bench.redis_servers import RedisServer


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def run_authz(tmp_path: Path, *args: str) -> Iterator[str]:
    """``scrapewarden authz`` in a process of its own; yields its base URL."""
    port = _free_port()
    exe = Path(sys.executable).parent / "scrapewarden"
    log = tmp_path / f"authz-{port}.log"
    env = {k: v for k, v in os.environ.items() if k != "SCRAPEWARDEN_STATE"}
    process = subprocess.Popen(
        [str(exe), "authz", "--listen", f"127.0.0.1:{port}", "--cache-seconds", "0", *args],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        env=env,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except requests.ConnectionError:
                assert process.poll() is None, log.read_text()
                assert time.monotonic() < deadline, "authz did not start"
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
    assert process.returncode == 0, log.read_text()


def described(url: str, path: str) -> tuple[str, dict[str, str]]:
    """The request for ``path`` as nginx's auth_request describes it to the service at ``url``."""
    headers = {**BROWSER, "X-Original-URI": path, "X-Original-Method": "GET", "X-Real-IP": "203.0.113.9"}
    return f"{url}/auth", headers


def test_a_walker_alternating_between_two_authz_services_meets_one_budget(
    redis: RedisServer, tmp_path: Path
) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text(POLICY)
    with run_authz(tmp_path, "--policy", str(policy), "--state", "memory://") as alone_url:
        alone = walk([alone_url], described)
    # The second way of naming the store: the policy's own state key.
    shared = tmp_path / "shared.toml"
    shared.write_text(f'state = "{redis.url}?prefix=authz"\n' + POLICY)
    with (
        run_authz(tmp_path, "--policy", str(shared)) as one,
        run_authz(tmp_path, "--policy", str(policy), "--state", f"{redis.url}?prefix=authz") as two,
    ):
        together = walk([one, two], described)
    assert 10 < alone < 300  # the record budget stopped it, not its first request
    assert abs(together - alone) <= 1, (alone, together)


def test_on_shared_counters_pipelined_answers_keep_their_order_and_a_frozen_redis_holds_none_up(
    redis: RedisServer,
) -> None:
    """In one process over loopback: with Redis state each auth request is answered by a task,
    yet pipelined answers come back in request order; with the server frozen (SIGSTOP) every
    request is still answered, on local counters, within a bound set by the URL's deadlines."""
    import asyncio
    import re

    from scrapewarden.doors.authz import AuthzServer, AuthzService
    from scrapewarden.warden import Warden

    def described(uri: str, client: str, *, close: bool = False) -> bytes:
        lines = ["GET /auth HTTP/1.1", "Host: 127.0.0.1", *(f"{k}: {v}" for k, v in BROWSER.items())]
        lines += [f"X-Original-URI: {uri}", "X-Original-Method: GET", f"X-Real-IP: {client}"]
        if close:
            lines.append("Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    async def exchange(port: int, data: bytes) -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(data)
        chunks = []
        try:
            while chunk := await asyncio.wait_for(reader.read(65536), 5):
                chunks.append(chunk)
        finally:
            writer.close()
        return b"".join(chunks)

    state = f"{redis.url}?prefix=authz-outage&timeout=0.05&connect_timeout=0.05&bulk_timeout=0.2"
    warden = Warden(None, state=state)
    counters = warden.counters
    assert counters is not None
    service = AuthzService(warden)

    async def run() -> list[float]:
        server = AuthzServer(service)
        _, port = await server.start("127.0.0.1", 0)
        took: list[float] = []
        try:
            pipelined = (
                described("/", "203.0.113.1")
                + b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                + described("/.env", "203.0.113.2")
                + described("/about", "203.0.113.3", close=True)
            )
            answers = await exchange(port, pipelined)
            assert re.findall(rb"HTTP/1\.1 (\d{3}) ", answers) == [b"200", b"200", b"403", b"200"]
            assert counters.calls > 0 and counters.failures == 0
            redis.pause()
            for n in range(20):
                started = time.monotonic()
                answer = await exchange(port, described(f"/about/{n}", "203.0.113.4", close=True))
                took.append(time.monotonic() - started)
                assert answer.startswith(b"HTTP/1.1 200 "), answer[:100]
        finally:
            redis.resume()
            await server.stop()
        return took

    try:
        took = asyncio.run(run())
    finally:
        warden.close()
    assert counters.failures > 0  # the frozen server was waited for, then given up on
    # Measured: 0.051-0.053 s each (the counters' 50 ms deadline).
    assert max(took) < 1.0, sorted(took)[-5:]
