"""A protected site and the dashboard on one SQLite state store, both served over loopback.

The site is a tiny ASGI app behind ``ScrapeWardenMiddleware`` that believes X-Forwarded-For
from loopback, so a test can send traffic "from" any address. The dashboard is a separate app
on its own Warden over the same state URL, as in a deployment.
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from scrapewarden.core.policy import Policy
from scrapewarden.dashboard.accounts import add_user
from scrapewarden.dashboard.app import create_app
from scrapewarden.dashboard.login_guard import LoginBudget
from scrapewarden.doors.asgi import ScrapeWardenMiddleware
from scrapewarden.policy_file import load_policy
from scrapewarden.state.sqlite import SQLiteStore
from scrapewarden.warden import Warden

PASSWORD = "correct horse battery staple"
USERS = {"ada": "admin", "ana": "analyst", "vic": "viewer"}
CHROME = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
)
BOT_UA = "python-requests/2.32.3"
XSS_UA = "<img src=x onerror=alert(1)>"


def site_policy() -> Policy:
    return Policy(
        network={"trusted_proxies": ["127.0.0.0/8", "::1/128"]},
        protected=[{"pattern": "/people/{id}"}],
        # httpx plays the browser here: its header set is not a real browser's.
        client={"inconsistent_browser": 0, "missing_accept_language": 0},
    )


async def _people(scope: Any, receive: Any, send: Any) -> None:
    body = b"<!doctype html><title>person</title><p>someone"
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/html")]})
    await send({"type": "http.response.body", "body": body})


@dataclass
class Served:
    url: str
    thread: threading.Thread
    server: Any
    sock: socket.socket

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(20)
        self.sock.close()


def serve(app: Any, *, lifespan: str = "off") -> Served:
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, lifespan=lifespan, log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
        time.sleep(0.01)
    return Served(f"http://127.0.0.1:{sock.getsockname()[1]}", thread, server, sock)


@dataclass
class Setup:
    dash: str
    site: str
    state_url: str
    site_warden: Warden
    app: Any

    def traffic(self, address: str, path: str, *, ua: str = CHROME, n: int = 1) -> list[int]:
        """``n`` requests to the site as if from ``address``; their status codes."""
        headers = {"x-forwarded-for": address, "user-agent": ua, "accept": "text/html"}
        with httpx.Client(base_url=self.site, timeout=10) as client:
            codes = [client.get(path, headers=headers).status_code for _ in range(n)]
        self.site_warden.store.flush()
        return codes


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    state_url = f"sqlite:///{tmp_path}/state.db"
    with SQLiteStore(tmp_path / "state.db") as store:
        for name, role in USERS.items():
            add_user(store, name, role, PASSWORD, now=time.time())
    site_warden = Warden(site_policy(), state=state_url)
    site = serve(ScrapeWardenMiddleware(_people, warden=site_warden))
    # Generous login budgets: the tests log in many times from 127.0.0.1 (one test checks them).
    app = create_app(state_url, policy=site_policy(), login_budget=LoginBudget(100, 100, 300))
    dash = serve(app)
    try:
        yield Setup(dash.url, site.url, state_url, site_warden, app)
    finally:
        dash.stop()
        site.stop()
        app.state.dashboard.close()
        site_warden.close()


POLICY = """\
[network]
trusted_proxies = ["127.0.0.0/8", "::1/128"]

[[protected]]
pattern = "/people/{id}"

[client]
inconsistent_browser = 0
missing_accept_language = 0
"""
LOWER_BUDGET = POLICY + "\n[limits.per_ip]\nprofiles_per_hour = 3\n"


@dataclass
class PolicySetup:
    """A site and a dashboard sharing a store, the dashboard started with a policy file."""

    dash: str
    site: str
    policy_file: Path
    site_warden: Warden

    def scrape(self, address: str, count: int) -> None:
        headers = {"x-forwarded-for": address, "user-agent": BOT_UA, "accept": "text/html"}
        with httpx.Client(base_url=self.site, timeout=10) as client:
            for i in range(count):
                client.get(f"/people/{i}", headers=headers)
        self.site_warden.store.flush()


@contextmanager
def site_and_dashboard(
    tmp: Path, policy_text: str, **dashboard: Any
) -> Iterator[tuple[Any, Any, str, Path, Warden]]:
    """A protected site and the dashboard on one SQLite store, both from the policy file written
    with ``policy_text`` (``dashboard``: more ``create_app`` arguments). Yields the served
    dashboard and site, the state URL, the policy file and the site's Warden."""
    policy_file = tmp / "policy.toml"
    policy_file.write_text(policy_text, encoding="utf-8")
    state_url = f"sqlite:///{tmp}/state.db"
    with SQLiteStore(tmp / "state.db") as store:
        for name, role in USERS.items():
            add_user(store, name, role, PASSWORD, now=time.time())
    site_warden = Warden(load_policy(policy_file), state=state_url)
    site = serve(ScrapeWardenMiddleware(_people, warden=site_warden))
    app = create_app(state_url, policy=policy_file, login_budget=LoginBudget(100, 100, 300), **dashboard)
    dash = serve(app)
    try:
        yield dash, site, state_url, policy_file, site_warden
    finally:
        dash.stop()
        site.stop()
        app.state.dashboard.close()
        site_warden.close()


@pytest.fixture
def policy_setup(tmp_path: Path) -> Iterator[PolicySetup]:
    with site_and_dashboard(tmp_path, POLICY) as (dash, site, _state_url, policy_file, site_warden):
        yield PolicySetup(dash.url, site.url, policy_file, site_warden)


@pytest.fixture
def browser() -> Iterator[Any]:
    from scrapewarden.demo.actors.programs import CHROMIUM_ARGS, browser_unavailable, chromium_executable

    reason = browser_unavailable()
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=chromium_executable(), args=list(CHROMIUM_ARGS), headless=True
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    wanted = os.environ.get("SCRAPEWARDEN_SCREENSHOTS")
    folder = Path(wanted) if wanted else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert found, "no CSRF token on the page"
    return found.group(1)


@contextmanager
def login(base: str, name: str, password: str = PASSWORD) -> Iterator[httpx.Client]:
    """A client logged in as ``name`` (follows no redirects: tests look at them)."""
    with httpx.Client(base_url=base, timeout=10) as client:
        token = csrf_of(client.get("/login").text)
        answer = client.post("/login", data={"csrf": token, "name": name, "password": password, "next": "/"})
        assert answer.status_code == 303, answer.text[:500]
        yield client
