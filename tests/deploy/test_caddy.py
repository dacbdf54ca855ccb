"""docs/deploy/caddy/Caddyfile with Debian's Caddy, end to end."""

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

GLOBAL_OPTIONS = "{\n\tadmin off\n}\n\n"
"""Test-only: no admin endpoint (a fixed port shared by every Caddy on the machine)."""


def start_caddy(tmp: Path, site: int, authz: int) -> tuple[int, subprocess.Popen[bytes], Path]:
    caddy = need("caddy")
    port = free_port()
    config = ported((DEPLOY / "caddy" / "Caddyfile").read_text(), site=site, authz=authz, proxy=port)
    (tmp / "Caddyfile").write_text(GLOBAL_OPTIONS + config)
    log = tmp / "caddy.log"
    home = tmp / "home"
    home.mkdir()
    process = subprocess.Popen(
        [caddy, "run", "--config", str(tmp / "Caddyfile"), "--adapter", "caddyfile"],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        env={
            **os.environ,
            "HOME": str(home),
            "XDG_DATA_HOME": str(home / "data"),
            "XDG_CONFIG_HOME": str(home / "config"),
        },
    )
    return port, process, log


@pytest.fixture(scope="module")
def stack(stacks: Callable[..., Stack]) -> Stack:
    need("caddy")
    return stacks(start_caddy)


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
    need("caddy")
    throttled = stacks(start_caddy, THROTTLE_POLICY)
    responses = check_walker_refused(throttled, source="127.0.0.6")
    assert responses[0].status == 429
    assert responses[0].headers["retry-after"] == "60"


def test_challenge_redirects_when_configured(stacks: Callable[..., Stack]) -> None:
    need("caddy")
    redirecting = stacks(start_caddy, POLICY, "--challenge-url", "/.sw/check")
    before = list(redirecting.site.seen)
    response = request(redirecting.proxy, "/people/3?tab=x", WALKER, source="127.0.0.7")
    assert response.status == 302
    assert response.headers["location"] == "/.sw/check?next=%2Fpeople%2F3%3Ftab%3Dx"
    assert redirecting.site.seen == before


def test_under_attack_challenge_round_trip(stacks: Callable[..., Stack]) -> None:
    need("caddy")
    check_challenge_round_trip(stacks(start_caddy, CHALLENGE_POLICY, "--under-attack"))
