"""Real proxies (nginx, HAProxy, Caddy from Debian packages) with the shipped snippets, in front
of a tiny upstream, with the real ``scrapewarden authz`` deciding, all on loopback.

The snippets in docs/deploy/ use the documented defaults (site 127.0.0.1:8000, authz
127.0.0.1:9100, proxy 127.0.0.1:8080); tests substitute free ports for those and nothing else,
so what is tested is what is documented. Clients connect from distinct loopback addresses
(127.0.0.2, 127.0.0.3...) so each counts as its own client.
"""

from __future__ import annotations

import hashlib
import html
import http.client
import http.server
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "docs" / "deploy"
STARTUP_DEADLINE = 20.0

BROWSER = [
    ("User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"),
    ("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
    ("Accept-Language", "en-US,en;q=0.5"),
    ("Accept-Encoding", "gzip, deflate, br"),
    ("Upgrade-Insecure-Requests", "1"),
    ("Sec-Fetch-Dest", "document"),
    ("Sec-Fetch-Mode", "navigate"),
    ("Sec-Fetch-Site", "none"),
    ("Sec-Fetch-User", "?1"),
]
"""What Firefox sends for a page it navigates to."""

WALKER = [
    ("User-Agent", "python-requests/2.32.3"),
    ("Accept-Encoding", "gzip, deflate"),
    ("Accept", "*/*"),
]
"""What python-requests sends."""

POLICY = """
[[protected]]
pattern = "/people/{id}"
kind = "profile"
"""

CHALLENGE_POLICY = (
    POLICY
    + """
[challenge]
min_bits = 10
max_bits = 12
"""
)
"""Low difficulty, for the tests that do the proof-of-work in Python (the browser tests don't)."""

THROTTLE_POLICY = (
    POLICY
    + """
[thresholds]
throttle = 30
challenge = 70
block = 85
"""
)
"""Moves a bot user agent's score (60) from challenge into throttle, to see 429s end to end."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[bytes] | None = None, log: Path | None = None) -> None:
    deadline = time.monotonic() + STARTUP_DEADLINE
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            detail = log.read_text(errors="replace") if log and log.exists() else ""
            raise RuntimeError(f"process exited with {process.returncode}:\n{detail}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on port {port}")


@dataclass
class Upstream:
    port: int
    seen: list[str] = field(default_factory=list)


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes


def request(
    port: int,
    path: str,
    headers: list[tuple[str, str]],
    *,
    source: str = "127.0.0.2",
    method: str = "GET",
    body: bytes | None = None,
) -> Response:
    """One request from ``source``, headers in exactly the given order."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10, source_address=(source, 0))
    try:
        connection.putrequest(method, path, skip_accept_encoding=True)
        for name, value in headers:
            connection.putheader(name, value)
        if body is not None:
            connection.putheader("Content-Type", "application/x-www-form-urlencoded")
            connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        response = connection.getresponse()
        body = response.read()
        return Response(response.status, {k.lower(): v for k, v in response.getheaders()}, body)
    finally:
        connection.close()


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    """The site: answers every GET with a small page and remembers what it served."""
    site = Upstream(port=0)

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            site.seen.append(self.path)
            body = b"<!doctype html><title>site</title><p>the real page</p>\n"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    site.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield site
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Authz:
    port: int
    process: subprocess.Popen[bytes]
    log: Path


def start_authz(tmp: Path, policy: str, *extra: str) -> Authz:
    policy_file = tmp / "policy.toml"
    policy_file.write_text(policy)
    port = free_port()
    log = tmp / "authz.log"
    exe = Path(sys.executable).parent / "scrapewarden"
    process = subprocess.Popen(
        [str(exe), "authz", "--listen", f"127.0.0.1:{port}", "--policy", str(policy_file), *extra],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        env={**os.environ, "SCRAPEWARDEN_STATE": "memory://"},
    )
    wait_for_port(port, process, log)
    return Authz(port, process, log)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def ported(text: str, *, site: int, authz: int, proxy: int) -> str:
    """A shipped snippet with the documented default ports replaced by the test's ports."""
    for default, port in (("127.0.0.1:8000", site), ("127.0.0.1:9100", authz), ("127.0.0.1:8080", proxy)):
        assert default in text, f"snippet no longer mentions {default}"
        text = text.replace(default, f"127.0.0.1:{port}")
    return text


def need(binary: str) -> str:
    path = shutil.which(binary) or next(
        (str(p) for p in (Path("/usr/sbin") / binary, Path("/usr/bin") / binary) if p.exists()), None
    )
    if path is None:
        pytest.skip(f"{binary} is not installed (apt-get install {binary}; ./dev setup does it as root)")
    return path


ProxyStarter = Callable[[Path, int, int], tuple[int, subprocess.Popen[bytes], Path]]
"""(work dir, site port, authz port) -> (proxy port, process, log file)."""


@dataclass
class Stack:
    proxy: int
    site: Upstream
    authz: Authz


@pytest.fixture(scope="module")
def stacks(upstream: Upstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Stack]]:
    """Builds (authz + proxy) stacks in front of the module's upstream; stops them all at the end."""
    processes: list[subprocess.Popen[bytes]] = []

    def build(start_proxy: ProxyStarter, policy: str = POLICY, *authz_args: str) -> Stack:
        tmp = tmp_path_factory.mktemp("stack")
        authz = start_authz(tmp, policy, *authz_args)
        processes.append(authz.process)
        port, process, log = start_proxy(tmp, upstream.port, authz.port)
        processes.append(process)
        wait_for_port(port, process, log)
        return Stack(port, upstream, authz)

    try:
        yield build
    finally:
        for process in reversed(processes):
            stop(process)


# --- the checks every proxy must pass ------------------------------------------------------------


def check_browser_allowed(stack: Stack) -> None:
    before = len(stack.site.seen)
    response = request(stack.proxy, "/people/1", BROWSER, source="127.0.0.2")
    assert response.status == 200, response.body[:300]
    assert b"the real page" in response.body
    assert stack.site.seen[before:] == ["/people/1"]
    asset_headers = [(n, "text/css,*/*;q=0.1" if n == "Accept" else v) for n, v in BROWSER]
    asset = request(stack.proxy, "/static/site.css", asset_headers)
    assert asset.status == 200, asset.body[:300]


def check_walker_refused(stack: Stack, source: str = "127.0.0.3") -> list[Response]:
    before = list(stack.site.seen)
    responses = [request(stack.proxy, f"/people/{i}", WALKER, source=source) for i in range(1, 16)]
    assert all(r.status in (403, 429) for r in responses), [r.status for r in responses]
    assert stack.site.seen == before, "a refused request reached the site"
    return responses


def check_trap_blocked(stack: Stack) -> None:
    before = list(stack.site.seen)
    response = request(stack.proxy, "/.env", BROWSER, source="127.0.0.4")
    assert response.status == 403
    assert b"Access paused" in response.body  # the block page, passed through
    assert response.headers["content-type"].startswith("text/html")
    assert stack.site.seen == before


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium through Playwright (skipped where either is missing)."""
    from scrapewarden.demo.actors.programs import browser_unavailable, launch_options

    reason = browser_unavailable()
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # A person's browser: navigator.webdriver false (an automated one is re-challenged).
        launched = playwright.chromium.launch(**launch_options(as_person=True))
        try:
            yield launched
        finally:
            launched.close()


# --- the challenge, through the proxy ------------------------------------------------------------

_CHALLENGE = re.compile(r'data-challenge="([^"]*)"')
_BITS = re.compile(r'data-bits="(\d+)"')
_NEXT = re.compile(r'name="next" value="([^"]*)"')


def solved_form(page: bytes) -> dict[str, str]:
    """The form the challenge page's script would post, with the proof-of-work done in Python."""
    text = page.decode("utf-8")
    token, bits, target = _CHALLENGE.search(text), _BITS.search(text), _NEXT.search(text)
    assert token and bits and target, f"not a challenge page: {text[:300]!r}"
    challenge = html.unescape(token.group(1))
    nonce = next(
        n
        for n in range(1 << 24)
        if int.from_bytes(hashlib.sha256(f"{challenge}:{n}".encode()).digest(), "big")
        >> (256 - int(bits.group(1)))
        == 0
    )
    return {
        "challenge": challenge,
        "nonce": str(nonce),
        "next": html.unescape(target.group(1)),
        "signals": "{}",
    }


def check_challenge_round_trip(stack: Stack, source: str = "127.0.0.8") -> None:
    """Under attack: the page asked for answers with the challenge page, the answer goes through
    the proxy's /.sw/ route to authz, and the clearance cookie lets the next pages through."""
    before = list(stack.site.seen)
    first = request(stack.proxy, "/people/5?tab=x", BROWSER, source=source)
    assert first.status == 403 and first.headers["content-type"].startswith("text/html"), first.body[:300]
    assert "set-cookie" not in first.headers
    form = solved_form(first.body)
    assert form["next"] == "/people/5?tab=x"
    script = request(stack.proxy, "/.sw/worker.js", BROWSER, source=source)
    assert script.status == 200 and b"swSolve" in script.body
    # The answer from another address (another /24) is refused: bound to the client the proxy saw.
    other = request(
        stack.proxy, "/.sw/verify", BROWSER, source="127.0.1.8", method="POST", body=urlencode(form).encode()
    )
    assert other.status == 403 and "set-cookie" not in other.headers
    verified = request(
        stack.proxy, "/.sw/verify", BROWSER, source=source, method="POST", body=urlencode(form).encode()
    )
    assert verified.status == 303, verified.body[:300]
    assert verified.headers["location"] == "/people/5?tab=x"
    cookie = verified.headers["set-cookie"].split(";", 1)[0]
    assert cookie.startswith("sw_clearance=")
    cleared = [*BROWSER, ("Cookie", cookie)]
    for path in ("/people/5?tab=x", "/people/6"):
        landed = request(stack.proxy, path, cleared, source=source)
        assert landed.status == 200 and b"the real page" in landed.body
    # A plain script never gets the page, only the JSON refusal, and never a cookie.
    walker = request(stack.proxy, "/people/7", WALKER, source=source)
    assert walker.status == 403 and walker.headers["content-type"] == "application/json"
    assert stack.site.seen[len(before) :] == ["/people/5?tab=x", "/people/6"]
    assert not any(path.startswith("/.sw/") for path in stack.site.seen)
