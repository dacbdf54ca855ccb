"""docs/deploy/nginx/scrapewarden.conf with Debian's nginx, end to end."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from deploy_helpers import (
    DEPLOY,
    POLICY,
    THROTTLE_POLICY,
    WALKER,
    Stack,
    check_browser_allowed,
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
