"""Real Chromium through the real middleware and engine: the whole challenge path.

The site is under attack (every visitor without clearance is challenged), so a browser that a
person uses is challenged once, passes, and browses on; a browser driven by automation passes the
proof-of-work too, but the clearance it earns carries what it showed (``navigator.webdriver``),
so it is challenged again until the page stops it with the loop message.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn

from scrapewarden.core.policy import Policy
from scrapewarden.doors.asgi import ScrapeWardenMiddleware
from scrapewarden.state.summary import summarize
from scrapewarden.warden import Warden

TIMEOUT_MS = 30_000
"""Backstop only: a solve at 10 bits takes milliseconds."""


async def people_site(scope: dict[str, Any], receive: Any, send: Any) -> None:
    body = f"<!doctype html><title>p</title><h1 id=landed>{scope['path']}</h1>".encode()
    headers = [(b"content-type", b"text/html; charset=utf-8")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@pytest.fixture
def protected(tmp_path: Any) -> Iterator[tuple[str, Warden]]:
    policy = Policy(challenge={"min_bits": 10, "max_bits": 10, "under_attack": True})
    warden = Warden(policy, state=f"sqlite:///{tmp_path}/state.db")
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(
        ScrapeWardenMiddleware(people_site, warden=warden),
        lifespan="off",
        log_level="warning",
        access_log=False,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}", warden
    finally:
        server.should_exit = True
        thread.join(20)
        sock.close()
        warden.close()


def _launch(playwright: Any, *, as_person: bool) -> Any:
    from scrapewarden.demo.actors.programs import launch_options

    return playwright.chromium.launch(**launch_options(as_person=as_person))


@pytest.fixture
def playwright() -> Iterator[Any]:
    from scrapewarden.demo.actors.programs import browser_unavailable

    reason = browser_unavailable()
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as running:
        yield running


def test_a_persons_browser_is_challenged_once_and_browses_on(protected: Any, playwright: Any) -> None:
    from scrapewarden.demo.actors.programs import chrome_user_agent

    url, warden = protected
    browser = _launch(playwright, as_person=True)
    try:
        context = browser.new_context(user_agent=chrome_user_agent(browser.version))
        page = context.new_page()
        first = page.goto(f"{url}/people/7?tab=about")
        assert first is not None and first.status == 403  # the challenge, at the asked address
        page.wait_for_selector("#landed", timeout=TIMEOUT_MS)
        assert page.url == f"{url}/people/7?tab=about"
        later = [page.goto(f"{url}/people/{n}") for n in (8, 9)]
        assert [r.status for r in later if r is not None] == [200, 200]
    finally:
        browser.close()
    warden.store.flush()
    summary = summarize(warden.store.events(limit=1000))
    assert summary.challenges == 1 and summary.passed_by_kind == {"pow": 1}
    assert not summary.passed_with_signs  # the person's browser showed nothing automated


def test_an_automated_browser_passes_but_is_not_let_through(protected: Any, playwright: Any) -> None:
    from scrapewarden.demo.actors.programs import chrome_user_agent

    url, warden = protected
    browser = _launch(playwright, as_person=False)  # Playwright's default: navigator.webdriver
    try:
        # Even with the user agent of a person's Chrome, the page sees the automation flag.
        context = browser.new_context(user_agent=chrome_user_agent(browser.version))
        page = context.new_page()
        page.goto(f"{url}/people/7")
        # Each pass leads back to a new challenge; the page's loop guard ends it with a message.
        page.wait_for_selector("#sw-loop", state="visible", timeout=TIMEOUT_MS)
        assert page.query_selector("#landed") is None
    finally:
        browser.close()
    warden.store.flush()
    summary = summarize(warden.store.events(limit=1000))
    assert summary.passed >= 1 and summary.passed_with_signs["webdriver"] == summary.passed
    assert summary.challenges > summary.passed
