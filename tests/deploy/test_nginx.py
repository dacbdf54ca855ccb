"""docs/deploy/nginx/scrapewarden.conf with Debian's nginx, end to end."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from deploy_helpers import (
    CHALLENGE_POLICY,
    DEPLOY,
    POLICY,
    THROTTLE_POLICY,
    WALKER,
    Stack,
    check_browser_allowed,
    check_challenge_round_trip,
    check_trap_blocked,
    check_walker_refused,
    free_port,
    need,
    ported,
    request,
)

MAIN_CONF = """
worker_processes 1;
error_log {dir}/error.log info;
pid {dir}/nginx.pid;
events {{ worker_connections 256; }}
http {{
    log_format scrapewarden '$remote_addr "$request" $status sw=$sw_action/$sw_score $sw_ref';
    access_log {dir}/access.log scrapewarden;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    include {dir}/scrapewarden.conf;
}}
"""


def start_nginx(tmp: Path, site: int, authz: int) -> tuple[int, subprocess.Popen[bytes], Path]:
    nginx = need("nginx")
    port = free_port()
    snippet = (DEPLOY / "nginx" / "scrapewarden.conf").read_text()
    (tmp / "scrapewarden.conf").write_text(ported(snippet, site=site, authz=authz, proxy=port))
    (tmp / "nginx.conf").write_text(MAIN_CONF.format(dir=tmp))
    log = tmp / "error.log"
    process = subprocess.Popen(
        [nginx, "-p", str(tmp), "-c", str(tmp / "nginx.conf"), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=(tmp / "stderr.log").open("wb"),
    )
    return port, process, log


@pytest.fixture(scope="module")
def stack(stacks: Callable[..., Stack]) -> Stack:
    need("nginx")
    return stacks(start_nginx)


def test_browser_is_allowed_and_reaches_the_site(stack: Stack) -> None:
    check_browser_allowed(stack)


def test_walker_is_refused_with_the_explanation_and_never_reaches_the_site(stack: Stack) -> None:
    responses = check_walker_refused(stack)
    # The body comes from authz through error_page: JSON for a client that does not ask for HTML.
    assert all(r.headers["content-type"] == "application/json" for r in responses)
    assert b'"error": "challenge"' in responses[0].body


def test_trap_path_is_blocked(stack: Stack) -> None:
    check_trap_blocked(stack)


def test_access_log_gets_the_verdict(stack: Stack) -> None:
    request(stack.proxy, "/about", WALKER, source="127.0.0.5")
    log = Path(stack.authz.log).parent / "access.log"
    assert "sw=challenge/60" in log.read_text()


def test_throttle_is_a_429_with_retry_after(stacks: Callable[..., Stack]) -> None:
    need("nginx")
    throttled = stacks(start_nginx, THROTTLE_POLICY)
    responses = check_walker_refused(throttled, source="127.0.0.6")
    assert responses[0].status == 429
    assert responses[0].headers["retry-after"] == "60"
    assert b'"retry_after": 60' in responses[0].body


def test_challenge_redirects_when_configured(stacks: Callable[..., Stack]) -> None:
    need("nginx")
    redirecting = stacks(start_nginx, POLICY, "--challenge-url", "/.sw/check")
    before = list(redirecting.site.seen)
    response = request(redirecting.proxy, "/people/3?tab=a%20b", WALKER, source="127.0.0.7")
    assert response.status == 302
    assert response.headers["location"] == "/.sw/check?next=%2Fpeople%2F3%3Ftab%3Da%2520b"
    assert redirecting.site.seen == before


def test_under_attack_challenge_round_trip(stacks: Callable[..., Stack]) -> None:
    need("nginx")
    check_challenge_round_trip(stacks(start_nginx, CHALLENGE_POLICY, "--under-attack"))


LAND_TIMEOUT_MS = 30_000
"""Backstop only: the shipped difficulty (14 bits) is solved in well under a second here."""


def _person(browser: Any, **options: Any) -> Any:
    """A person's browser: Chromium with desktop Chrome's user agent (not HeadlessChrome)."""
    from scrapewarden.demo.actors.programs import chrome_user_agent

    return browser.new_context(user_agent=chrome_user_agent(browser.version), **options)


def _site_pages(stack: Stack, before: int) -> list[str]:
    return [p for p in stack.site.seen[before:] if p.startswith("/people/")]


def test_chromium_solves_the_challenge_and_lands_on_the_page_it_asked_for(
    stacks: Callable[..., Stack], browser: Any
) -> None:
    need("nginx")
    stack = stacks(start_nginx, POLICY, "--under-attack")
    base = f"http://127.0.0.1:{stack.proxy}"
    before = len(stack.site.seen)
    context = _person(browser)
    page = context.new_page()
    first = page.goto(f"{base}/people/1?tab=a")
    assert first is not None and first.status == 403  # the challenge page, in place
    page.wait_for_selector("text=the real page", timeout=LAND_TIMEOUT_MS)
    assert page.url == f"{base}/people/1?tab=a"
    cookie = next(c for c in context.cookies() if c["name"] == "sw_clearance")
    assert cookie["httpOnly"] is True
    # The next page is not challenged again: the cookie comes along in nginx's auth subrequest.
    second = page.goto(f"{base}/people/2")
    assert second is not None and second.status == 200
    assert _site_pages(stack, before) == ["/people/1?tab=a", "/people/2"]
    context.close()

    # A forged clearance cookie is refused: challenged as if it were not there.
    # (Without JavaScript, so the page stays as served instead of solving and moving on.)
    forged = _person(browser, java_script_enabled=False)
    forged.add_cookies([{"name": "sw_clearance", "value": cookie["value"][:-6] + "AAAAAA", "url": base}])
    tab = forged.new_page()
    refused = tab.goto(f"{base}/people/3")
    assert refused is not None and refused.status == 403
    assert tab.locator("#sw-challenge").count() == 1
    forged.close()

    # Plain HTTP clients never obtain clearance: the page means nothing to them.
    import httpx
    import requests

    with requests.Session() as walker:
        reply = walker.get(f"{base}/people/4", timeout=10)
        assert reply.status_code == 403 and reply.json()["error"] == "challenge"
        assert not walker.cookies
    with httpx.Client(headers={"Accept": "text/html"}, follow_redirects=True, timeout=10) as client:
        reply = client.get(f"{base}/people/4")
        assert reply.status_code == 403 and "data-challenge" in reply.text
        assert client.get(f"{base}/people/5").status_code == 403
        assert not client.cookies
    assert _site_pages(stack, before) == ["/people/1?tab=a", "/people/2"]


def test_chromium_follows_the_challenge_url_redirect_and_lands(
    stacks: Callable[..., Stack], browser: Any
) -> None:
    """--challenge-url still works: a 302 to authz's own page, which leads back."""
    need("nginx")
    stack = stacks(start_nginx, POLICY, "--under-attack", "--challenge-url", "/.sw/challenge")
    base = f"http://127.0.0.1:{stack.proxy}"
    before = len(stack.site.seen)
    context = _person(browser)
    page = context.new_page()
    page.goto(f"{base}/people/8?x=1")
    page.wait_for_selector("text=the real page", timeout=LAND_TIMEOUT_MS)
    assert page.url == f"{base}/people/8?x=1"
    assert _site_pages(stack, before) == ["/people/8?x=1"]
    context.close()
