"""The forward-auth service's challenge path, in every proxy's request format, over loopback.

Each proxy asks about a page (an auth request describing it) and passes ``/.sw/...`` on to authz
as it is (its own forwarding headers added). Both are built here by hand the way each proxy
sends them; tests/deploy runs nginx, HAProxy and Caddy for real, and Traefik and Envoy (no
binaries here) are covered by these formats only.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from challenge_helpers import answer, read_page

from scrapewarden.core.policy import Policy
from scrapewarden.doors.authz import REPLY_PATH, AuthzConfig, AuthzServer, AuthzService
from scrapewarden.warden import Warden

FIREFOX = [
    ("user-agent", "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"),
    ("accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
    ("accept-language", "fr-FR,fr;q=0.8,en;q=0.5"),
    ("accept-encoding", "gzip, deflate, br"),
    ("sec-fetch-dest", "document"),
    ("sec-fetch-mode", "navigate"),
    ("sec-fetch-site", "none"),
]
CLIENT = "198.51.100.7"
"""The person's address, as the proxy saw it; authz itself only ever sees the proxy (127.0.0.1)."""
ELSEWHERE = "203.0.113.50"

Headers = list[tuple[str, str]]


def _auth_nginx(uri: str, client: str, headers: Headers) -> tuple[str, Headers]:
    return "/.scrapewarden/auth", [
        *headers,
        ("x-original-uri", uri),
        ("x-original-method", "GET"),
        ("x-original-proto", "http"),
        ("x-real-ip", client),
    ]


def _pages_nginx(client: str, headers: Headers) -> Headers:
    # location /.sw/ in docs/deploy/nginx/scrapewarden.conf
    return [*headers, ("x-real-ip", client), ("x-forwarded-for", client), ("x-forwarded-proto", "http")]


def _auth_haproxy(uri: str, client: str, headers: Headers) -> tuple[str, Headers]:
    _, described = _auth_nginx(uri, client, headers)
    order = ",".join(["host", *(name for name, _ in headers)])
    return "/auth", [*described, ("x-scrapewarden-proxy", "haproxy"), ("x-scrapewarden-header-order", order)]


def _pages_haproxy(client: str, headers: Headers) -> Headers:
    # backend scrapewarden_pages in docs/deploy/haproxy/haproxy.cfg (option forwardfor + X-Real-IP)
    return [*headers, ("x-forwarded-for", client), ("x-real-ip", client), ("x-forwarded-proto", "http")]


def _auth_caddy(uri: str, client: str, headers: Headers) -> tuple[str, Headers]:
    return "/auth", [
        *headers,
        ("x-forwarded-method", "GET"),
        ("x-forwarded-uri", uri),
        ("x-forwarded-host", "shop.example"),
        ("x-forwarded-proto", "http"),
        ("x-forwarded-for", client),
    ]


def _pages_caddy(client: str, headers: Headers) -> Headers:
    # reverse_proxy: X-Forwarded-For (the address Caddy saw), -Proto, -Host
    return [
        *headers,
        ("x-forwarded-for", client),
        ("x-forwarded-proto", "http"),
        ("x-forwarded-host", "shop.example"),
    ]


def _auth_traefik(uri: str, client: str, headers: Headers) -> tuple[str, Headers]:
    target, described = _auth_caddy(uri, client, headers)
    return target, [*described, ("x-forwarded-server", "traefik-1")]


def _pages_traefik(client: str, headers: Headers) -> Headers:
    # Traefik's load balancer sets X-Real-Ip and X-Forwarded-* on what it forwards.
    return [
        *headers,
        ("x-forwarded-for", client),
        ("x-forwarded-host", "shop.example"),
        ("x-forwarded-port", "80"),
        ("x-forwarded-proto", "http"),
        ("x-forwarded-server", "traefik-1"),
        ("x-real-ip", client),
    ]


def _auth_envoy(uri: str, client: str, headers: Headers) -> tuple[str, Headers]:
    return "/envoy" + uri, [
        *headers,
        ("x-forwarded-for", client),
        ("x-forwarded-proto", "http"),
        ("x-envoy-external-address", client),
        ("x-request-id", "3c7d"),
        ("x-envoy-expected-rq-timeout-ms", "500"),
    ]


def _pages_envoy(client: str, headers: Headers) -> Headers:
    # The /.sw/ route (ext_authz disabled) with use_remote_address: true.
    return [
        *headers,
        ("x-forwarded-for", client),
        ("x-forwarded-proto", "http"),
        ("x-envoy-external-address", client),
        ("x-request-id", "9a1b"),
    ]


FORMATS: dict[str, tuple[Callable[..., tuple[str, Headers]], Callable[..., Headers]]] = {
    "nginx": (_auth_nginx, _pages_nginx),
    "haproxy": (_auth_haproxy, _pages_haproxy),
    "caddy": (_auth_caddy, _pages_caddy),
    "traefik": (_auth_traefik, _pages_traefik),
    "envoy": (_auth_envoy, _pages_envoy),
}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@asynccontextmanager
async def serving(**config: Any) -> AsyncIterator[tuple[httpx.AsyncClient, AuthzService]]:
    """authz under attack on a loopback port, and a client for it."""
    policy = Policy(challenge={"min_bits": 10, "max_bits": 12})
    service = AuthzService(Warden(policy, state="memory://", under_attack=True), AuthzConfig(**config))
    server = AuthzServer(service)
    _, port = await server.start("127.0.0.1", 0)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            yield client, service
    finally:
        await server.stop()


@pytest.fixture
async def authz() -> AsyncIterator[tuple[httpx.AsyncClient, AuthzService]]:
    async with serving() as served:
        yield served


async def _ask(
    client: httpx.AsyncClient, fmt: str, uri: str, source: str, headers: Headers
) -> httpx.Response:
    """The answer the person sees for ``uri``: for nginx, the reply error_page fetches."""
    target, described = FORMATS[fmt][0](uri, source, headers)
    reply = await client.get(target, headers=described)
    if fmt == "nginx" and reply.status_code == 403 and "x-scrapewarden-status" in reply.headers:
        assert reply.content == b""  # auth_request drops bodies; the page comes by reference
        fetch = [("x-scrapewarden-reference", reply.headers["x-scrapewarden-reference"])]
        return await client.get(REPLY_PATH, headers=fetch)
    return reply


@pytest.mark.anyio
@pytest.mark.parametrize("fmt", list(FORMATS))
async def test_challenge_page_answer_and_clearance_in_every_format(authz: Any, fmt: str) -> None:
    client, service = authz
    pages = FORMATS[fmt][1]
    first = await _ask(client, fmt, "/people/1?tab=a%20b", CLIENT, FIREFOX)
    assert first.status_code == 403
    assert first.headers["content-type"].startswith("text/html")
    assert '<html lang="fr">' in first.text  # the person's language, from the described request
    page = read_page(first.text)
    assert page.next == "/people/1?tab=a%20b"

    # The answer, passed on by the proxy's /.sw/ route; bound to the client the proxy saw.
    form = answer(page)
    moved = await client.post("/.sw/verify", data=form, headers=pages(ELSEWHERE, FIREFOX))
    assert moved.status_code == 403 and "connection changed" in moved.text
    verified = await client.post("/.sw/verify", data=form, headers=pages(CLIENT, FIREFOX))
    assert verified.status_code == 303
    assert verified.headers["location"] == "/people/1?tab=a%20b"
    cookie = verified.headers["set-cookie"]
    assert cookie.startswith("sw_clearance=") and "HttpOnly" in cookie
    token = cookie.split(";", 1)[0]

    cleared = [*FIREFOX, ("cookie", token)]
    allowed = await _ask(client, fmt, "/people/2", CLIENT, cleared)
    assert allowed.status_code == 200 and allowed.headers["x-scrapewarden-action"] == "allow"
    # The same cookie from another network, or forged, earns nothing.
    assert (await _ask(client, fmt, "/people/2", ELSEWHERE, cleared)).status_code == 403
    forged = [*FIREFOX, ("cookie", "sw_clearance=" + token.split("=", 1)[1][:-4] + "AAAA")]
    assert (await _ask(client, fmt, "/people/2", CLIENT, forged)).status_code == 403
    assert service.stats.challenged == 3 and service.stats.own == 2


@pytest.mark.anyio
@pytest.mark.parametrize("fmt", list(FORMATS))
async def test_scripts_get_the_json_refusal_and_no_page(authz: Any, fmt: str) -> None:
    client, _ = authz
    script = [("user-agent", "python-requests/2.32.3"), ("accept", "*/*")]
    reply = await _ask(client, fmt, "/people/1", CLIENT, script)
    assert reply.status_code == 403
    assert reply.headers["content-type"] == "application/json"
    assert reply.json()["error"] == "challenge"


@pytest.mark.anyio
async def test_own_pages_scripts_and_errors(authz: Any) -> None:
    client, _ = authz
    headers = _pages_caddy(CLIENT, FIREFOX)
    page = await client.get("/.sw/challenge", params={"next": "//evil.example/"}, headers=headers)
    assert page.status_code == 200 and read_page(page.text).next == "/"
    script = await client.get("/.sw/worker.js", headers=headers)
    assert script.status_code == 200 and b"swSolve" in script.content
    assert script.headers["content-type"].startswith("text/javascript")
    head = await client.head("/.sw/challenge.js", headers=headers)
    assert head.status_code == 200 and head.content == b""
    assert (await client.get("/.sw/other", headers=headers)).status_code == 404
    assert (await client.get("/.sw/verify", headers=headers)).status_code == 405
    big = await client.post("/.sw/verify", content=b"challenge=" + b"a" * 9000, headers=headers)
    assert big.status_code == 413
    # The connection is still good for auth requests after our own pages.
    target, described = _auth_caddy("/", CLIENT, FIREFOX)
    assert (await client.get(target, headers=described)).status_code == 403


@pytest.mark.anyio
async def test_an_untrusted_hop_cannot_name_the_client() -> None:
    """From an address that is not a trusted hop, forwarding headers are ignored: everything binds
    to the connection's own address, whatever the headers say."""
    # Only 10/8 may describe clients: the test client (127.0.0.1) is "the internet".
    async with serving(trusted_hops=("10.0.0.0/8",)) as (client, service):
        pages = _pages_caddy(CLIENT, FIREFOX)
        first = await client.get("/.sw/challenge", params={"next": "/a"}, headers=pages)
        form = answer(read_page(first.text))
        verified = await client.post("/.sw/verify", data=form, headers=_pages_caddy(ELSEWHERE, FIREFOX))
        assert verified.status_code == 303  # both bound to 127.0.0.1
        token = verified.headers["set-cookie"].split(";", 1)[0]
        target, described = _auth_caddy("/a", ELSEWHERE, [*FIREFOX, ("cookie", token)])
        assert (await client.get(target, headers=described)).status_code == 200
    assert service.stats.untrusted_hops == 1
