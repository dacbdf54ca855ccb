"""The real demo serves the dashboard: log in with the printed one-off password in real Chromium
and watch the demo's traffic arrive (requests per second, decisions by action, top actors).

`scrapewarden demo` runs as a subprocess, light (a few people over HTTP, no programs, no browser
people, a short run); the test reads the dashboard's address and password from its console.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path
from typing import Any

import httpx
import pytest

from scrapewarden.demo.dashboard import DashboardAddressError, new_login, parse_loopback
from scrapewarden.demo.scenarios import free_port

pytestmark = pytest.mark.slow

SCRAPEWARDEN = Path(sys.executable).with_name("scrapewarden")
DURATION = 15
DEADLINE = 60.0


class Console:
    """The demo's standard output, read line by line in a thread (bounded waits)."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self._process = process
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, pattern: str) -> re.Match[str]:
        deadline = time.monotonic() + DEADLINE
        while time.monotonic() < deadline:
            for line in list(self.lines):
                found = re.search(pattern, line)
                if found:
                    return found
            if self._process.poll() is not None and not self._thread.is_alive():
                break
            time.sleep(0.1)
        raise AssertionError(f"the demo never printed {pattern!r}:\n" + "\n".join(self.lines))


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], Console, Path]]:
    port = free_port()
    stderr = tmp_path / "demo.stderr"
    command = [
        str(SCRAPEWARDEN),
        "demo",
        "--duration",
        str(DURATION),
        "--people",
        "2000",
        "--persons",
        "4",
        "--browser-people",
        "0",
        "--no-programs",
        "--dashboard",
        f"127.0.0.1:{port}",
    ]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=stderr.open("w"),
        stdin=subprocess.DEVNULL,
        text=True,
        # SCRAPEWARDEN_* variables are policy overrides: the test's own one stays here.
        env={**{k: v for k, v in os.environ.items() if k != "SCRAPEWARDEN_SCREENSHOTS"}, "COLUMNS": "200"},
    )
    try:
        yield process, Console(process), stderr
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)  # the demo stops its sites on the way out
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


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


def _command_lines() -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with suppress(OSError):  # gone meanwhile, or not ours to read
                found.append((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace"))
    return found


def test_the_demo_serves_its_traffic_on_the_dashboard(
    demo: tuple[subprocess.Popen[str], Console, Path], browser: Any, tmp_path: Path
) -> None:
    """Screenshots go to a temporary directory; SCRAPEWARDEN_SCREENSHOTS=docs/img refreshes
    the one docs/demo.md shows."""
    process, console, stderr = demo
    url = console.wait_for(r"dashboard: (http://127\.0\.0\.1:\d+/)").group(1)
    user = console.wait_for(r"user:\s+(\S+)").group(1)
    password = console.wait_for(r"password:\s+(\S+)").group(1)
    assert user == "demo-admin" and len(password) >= 20
    # Handed to the site's process on stdin: no process shows it on its command line.
    assert not [line for line in _command_lines() if password in line]

    context = browser.new_context(viewport={"width": 1180, "height": 900})
    page = context.new_page()
    console_messages: list[str] = []
    page.on("console", lambda msg: console_messages.append(msg.text))
    page.goto(url)
    assert "/login" in page.url
    page.fill("input[name=name]", user)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(url)

    # The traffic starts once all three sites are up; reload (bounded) until it shows.
    deadline = time.monotonic() + DEADLINE
    while True:
        rate = page.locator("#requests-per-second").inner_text().strip()
        decided = page.locator("svg.chart rect").count()
        actors = page.locator("section.actors table tbody tr").count()
        chart = page.locator("#rates-chart")  # requests/s over time, sampled every 2 s
        drawn = int(chart.get_attribute("data-steps") or 0) if chart.count() else 0
        if rate not in ("–", "0.0") and float(rate) > 0 and decided > 0 and actors > 0 and drawn >= 4:
            break
        assert process.poll() is None and time.monotonic() < deadline, (rate, decided, actors, drawn)
        time.sleep(1)
        page.reload()
    assert "this process" in page.locator("table.live-sources").inner_text()
    shots = Path(os.environ.get("SCRAPEWARDEN_SCREENSHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shots / "dashboard-demo.png"), full_page=True)
    assert int(page.locator("#decisions").inner_text()) > 0
    assert page.locator("#rates-chart path").count() > 0
    assert not [m for m in console_messages if "Content Security Policy" in m]
    context.close()

    assert process.wait(timeout=DEADLINE + DURATION) == 0, stderr.read_text()[-2000:]
    out = "\n".join(console.lines)
    assert "records received by each client" in out
    assert out.count(password) == 1  # printed once
    assert password not in stderr.read_text()
    # The demo is over: its sites and dashboard are gone with it.
    with pytest.raises(httpx.TransportError):
        httpx.get(url + "login", timeout=2)


def test_the_dashboard_address_is_loopback_and_moves_off_a_taken_port() -> None:
    for outside in ("0.0.0.0:8090", "192.0.2.1:8090", "example.com:8090"):
        with pytest.raises(DashboardAddressError):
            parse_loopback(outside)
    assert parse_loopback("localhost:8090") == ("127.0.0.1", 8090)
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        login = new_login(f"127.0.0.1:{port}")
    assert login.host == "127.0.0.1" and login.port not in (port, 0)
    assert login.url == f"http://127.0.0.1:{login.port}/" and login.user == "demo-admin"
    assert login.password != new_login(f"127.0.0.1:{port}").password  # random every run
    assert login.password not in repr(login)


def test_the_one_off_admin_is_removed_when_the_site_stops(tmp_path: Path) -> None:
    """Against a persistent store the demo leaves no login behind (and the audit log says so)."""
    from scrapewarden.demo.dashboard import DashboardThread
    from scrapewarden.demo.site import demo_policy
    from scrapewarden.state.sqlite import SQLiteStore
    from scrapewarden.warden import Warden

    db = tmp_path / "demo.db"
    warden = Warden(demo_policy(), state=f"sqlite:///{db}")
    login = new_login("127.0.0.1:0")
    served = DashboardThread(warden, login.host, login.port, login.user, login.password)
    try:
        with httpx.Client(base_url=login.url, timeout=5) as client:
            csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', _login_form(client))
            assert csrf
            fields = {"csrf": csrf.group(1), "name": login.user, "password": login.password, "next": "/"}
            assert client.post("/login", data=fields).status_code == 303
        with httpx.Client(base_url=login.url, timeout=5) as client:
            csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', _login_form(client))
            assert csrf
            wrong = {**fields, "csrf": csrf.group(1), "password": "not the password at all"}
            assert client.post("/login", data=wrong).status_code == 401
    finally:
        served.stop()
        warden.close()
    with SQLiteStore(db) as store:
        assert store.get_user(login.user) is None
        entries = store.audit_entries()
    actions = [(e.actor, e.action, e.target) for e in entries]
    assert ("scrapewarden demo", "user.add", "demo-admin") in actions
    assert ("scrapewarden demo", "user.remove", "demo-admin") in actions
    assert not any(login.password in e.details_json for e in entries)


def _login_form(client: httpx.Client) -> str:
    """The login page, once the dashboard's thread listens (bounded wait)."""
    deadline = time.monotonic() + DEADLINE
    while True:
        try:
            return client.get("/login").text
        except httpx.TransportError:
            assert time.monotonic() < deadline, "the dashboard never listened"
            time.sleep(0.05)
