"""docs/deploy/haproxy/ (haproxy.cfg + the Lua action) with Debian's HAProxy, end to end."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

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


def start_haproxy(tmp: Path, site: int, authz: int) -> tuple[int, subprocess.Popen[bytes], Path]:
    haproxy = need("haproxy")
    port = free_port()
    lua = tmp / "scrapewarden.lua"
    lua.write_text((DEPLOY / "haproxy" / "scrapewarden.lua").read_text())
    config = ported((DEPLOY / "haproxy" / "haproxy.cfg").read_text(), site=site, authz=authz, proxy=port)
    assert "/etc/haproxy/scrapewarden.lua" in config
    (tmp / "haproxy.cfg").write_text(config.replace("/etc/haproxy/scrapewarden.lua", str(lua)))
    log = tmp / "haproxy.log"
    process = subprocess.Popen(
        [haproxy, "-db", "-f", str(tmp / "haproxy.cfg")],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        env={**os.environ, "SCRAPEWARDEN_AUTHZ": f"http://127.0.0.1:{authz}/auth"},
    )
    return port, process, log


@pytest.fixture(scope="module")
def stack(stacks: Callable[..., Stack]) -> Stack:
    need("haproxy")
    return stacks(start_haproxy)


def test_browser_is_allowed_and_reaches_the_site(stack: Stack) -> None:
    check_browser_allowed(stack)


def test_walker_is_refused_with_the_explanation_and_never_reaches_the_site(stack: Stack) -> None:
    responses = check_walker_refused(stack)
    assert all(r.status == 403 for r in responses)
    assert responses[0].headers["content-type"] == "application/json"
    assert b'"error": "challenge"' in responses[0].body


def test_trap_path_is_blocked(stack: Stack) -> None:
    check_trap_blocked(stack)


def test_throttle_is_a_429_with_retry_after(stacks: Callable[..., Stack]) -> None:
    need("haproxy")
    throttled = stacks(start_haproxy, THROTTLE_POLICY)
    responses = check_walker_refused(throttled, source="127.0.0.6")
    assert responses[0].status == 429
    assert responses[0].headers["retry-after"] == "60"


def test_challenge_redirects_when_configured(stacks: Callable[..., Stack]) -> None:
    need("haproxy")
    redirecting = stacks(start_haproxy, POLICY, "--challenge-url", "/.sw/check")
    before = list(redirecting.site.seen)
    response = request(redirecting.proxy, "/people/3?tab=x", WALKER, source="127.0.0.7")
    assert response.status == 302
    assert response.headers["location"] == "/.sw/check?next=%2Fpeople%2F3%3Ftab%3Dx"
    assert redirecting.site.seen == before


def test_under_attack_challenge_round_trip(stacks: Callable[..., Stack]) -> None:
    need("haproxy")
    check_challenge_round_trip(stacks(start_haproxy, CHALLENGE_POLICY, "--under-attack"))
