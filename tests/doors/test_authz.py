"""The forward-auth decision service: request descriptions, trust, caching, bad input, the server.

The engine is the real one; :class:`CountingEngine` only wraps it to count full decisions (how
the cache is observed). Proxies' request formats are built by hand here, as each proxy sends
them; tests/deploy runs nginx, HAProxy and Caddy for real.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from scrapewarden.core.decision import Decision
from scrapewarden.core.facts import RequestFacts
from scrapewarden.core.policy import NetworkPolicy, Policy, ProtectedResource
from scrapewarden.doors.authz import REPLY_PATH, AuthzConfig, AuthzServer, AuthzService, parse_listen
from scrapewarden.doors.authz_cache import AssetDecisionCache
from scrapewarden.doors.authz_describe import describe
from scrapewarden.warden import Warden, build_engine

FIREFOX = [
    ("host", "shop.example"),
    ("user-agent", "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"),
    ("accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
    ("accept-language", "en-US,en;q=0.5"),
    ("accept-encoding", "gzip, deflate, br"),
    ("upgrade-insecure-requests", "1"),
    ("sec-fetch-dest", "document"),
    ("sec-fetch-mode", "navigate"),
    ("sec-fetch-site", "none"),
]
REQUESTS_UA = [("user-agent", "python-requests/2.32.3"), ("accept", "*/*")]
POLICY = Policy(protected=[ProtectedResource(pattern="/people/{id}")])


class CountingEngine:
    """The real engine, with a record of the requests it decided in full."""

    def __init__(self, policy: Policy, fail: bool = False) -> None:
        self.engine = build_engine(policy)
        self.seen: list[RequestFacts] = []
        self.fail = fail

    def decide(self, facts: RequestFacts) -> Decision:
        self.seen.append(facts)
        if self.fail:
            raise RuntimeError("engine bug")
        return self.engine.decide(facts)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.engine, name)


def service(
    policy: Policy = POLICY, fail: bool = False, **config: Any
) -> tuple[AuthzService, CountingEngine]:
    engine = CountingEngine(policy, fail)
    warden = Warden(policy, engine=engine, state="memory://")  # type: ignore[arg-type]
    return AuthzService(warden, AuthzConfig(**config)), engine


def nginx(uri: str, client: str, headers: list[tuple[str, str]] = FIREFOX) -> list[tuple[str, str]]:
    return [*headers, ("x-original-uri", uri), ("x-original-method", "GET"), ("x-real-ip", client)]


# --- request formats -------------------------------------------------------------------------------


def test_nginx_description() -> None:
    raw = [
        *FIREFOX,
        ("x-original-uri", "/people/7?tab=a"),
        ("x-original-method", "HEAD"),
        ("x-real-ip", "203.0.113.9"),
    ]
    d = describe(
        fmt="auto", trusted_hop=True, hop_peer="127.0.0.1", method="GET", target="/auth", raw_headers=raw
    )
    assert (d.format, d.method, d.path, d.query, d.peer) == (
        "nginx",
        "HEAD",
        "/people/7",
        "tab=a",
        "203.0.113.9",
    )
    assert d.headers == FIREFOX  # description headers gone, the client's own in their order
    assert not d.problems


def test_nginx_own_forwarded_entry_is_dropped_but_the_clients_chain_is_kept() -> None:
    # With $proxy_add_x_forwarded_for nginx appends $remote_addr: that entry is the peer now.
    raw = [*nginx("/", "203.0.113.9"), ("x-forwarded-for", "10.0.0.1, 203.0.113.9")]
    d = describe(
        fmt="nginx", trusted_hop=True, hop_peer="127.0.0.1", method="GET", target="/a", raw_headers=raw
    )
    assert d.peer == "203.0.113.9"
    assert d.header("x-forwarded-for") == "10.0.0.1"


def test_traefik_description() -> None:
    raw = [
        *FIREFOX[1:],
        ("host", "127.0.0.1:9100"),
        ("x-forwarded-method", "POST"),
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "shop.example"),
        ("x-forwarded-uri", "/search?q=smith"),
        ("x-forwarded-for", "198.51.100.20"),
        ("x-forwarded-server", "traefik-1"),
        ("x-forwarded-port", "443"),
    ]
    d = describe(
        fmt="auto", trusted_hop=True, hop_peer="127.0.0.1", method="GET", target="/auth", raw_headers=raw
    )
    assert (d.format, d.method, d.path, d.query) == ("traefik", "POST", "/search", "q=smith")
    assert (d.peer, d.scheme) == ("198.51.100.20", "https")
    assert d.header("host") == "shop.example"
    assert d.header("x-forwarded-for") is None
    assert not any(name.startswith("x-forwarded-") for name, _ in d.headers)


def test_caddy_description_keeps_the_clients_own_chain_for_the_policy_to_judge() -> None:
    raw = [
        *FIREFOX,
        ("x-forwarded-method", "GET"),
        ("x-forwarded-uri", "/people/1"),
        ("x-forwarded-for", "192.0.2.1, 198.51.100.20"),
        ("x-forwarded-proto", "http"),
    ]
    d = describe(fmt="auto", trusted_hop=True, hop_peer="::1", method="GET", target="/auth", raw_headers=raw)
    assert (d.format, d.peer, d.scheme) == ("caddy", "198.51.100.20", "http")
    assert d.header("x-forwarded-for") == "192.0.2.1"


def test_envoy_description_from_the_path_prefix() -> None:
    raw = [*FIREFOX, ("x-forwarded-for", "198.51.100.7"), ("x-request-id", "abc"), ("content-length", "0")]
    d = describe(
        fmt="auto",
        trusted_hop=True,
        hop_peer="127.0.0.1",
        method="DELETE",
        target="/envoy/people/3?x=1",
        raw_headers=raw,
    )
    assert (d.format, d.method, d.path, d.query, d.peer) == (
        "envoy",
        "DELETE",
        "/people/3",
        "x=1",
        "198.51.100.7",
    )
    assert d.headers == FIREFOX


def test_haproxy_description_restores_the_clients_header_order() -> None:
    shuffled = list(reversed(FIREFOX[1:]))
    order = ",".join(name for name, _ in FIREFOX)
    raw = [
        ("host", "127.0.0.1:9100"),
        *shuffled,
        ("x-original-uri", "/"),
        ("x-original-method", "GET"),
        ("x-real-ip", "203.0.113.5"),
        ("x-scrapewarden-proxy", "haproxy"),
        ("x-scrapewarden-header-order", order),
    ]
    d = describe(
        fmt="auto", trusted_hop=True, hop_peer="127.0.0.1", method="GET", target="/auth", raw_headers=raw
    )
    assert d.format == "haproxy"
    assert [name for name, _ in d.headers] == [name for name, _ in FIREFOX]


def test_forced_format_ignores_other_conventions() -> None:
    raw = [*FIREFOX, ("x-forwarded-uri", "/people/1"), ("x-real-ip", "203.0.113.5")]
    d = describe(
        fmt="nginx", trusted_hop=True, hop_peer="127.0.0.1", method="GET", target="/a", raw_headers=raw
    )
    assert d.format == "nginx"
    assert d.path == "/"
    assert "no original URI in the description" in d.problems


# --- trust ----------------------------------------------------------------------------------------


def test_untrusted_hop_is_decided_as_the_client_itself() -> None:
    authz, engine = service()
    raw = [*nginx("/people/1", "203.0.113.9"), ("x-forwarded-for", "192.0.2.55")]
    answer = authz.answer(hop_peer="192.0.2.200", method="GET", target="/auth", headers=raw)
    assert answer.status == 200
    facts = engine.seen[-1]
    assert facts.ip == "192.0.2.200"
    assert facts.header("x-forwarded-for") is None
    assert authz.stats.untrusted_hops == 1


def test_trusted_hop_gives_the_proxys_client_address() -> None:
    authz, engine = service()
    authz.answer(hop_peer="127.0.0.1", method="GET", target="/auth", headers=nginx("/", "203.0.113.9"))
    assert engine.seen[-1].ip == "203.0.113.9"


def test_hops_are_the_configured_ones_plus_the_policys_proxies() -> None:
    policy = Policy(network=NetworkPolicy(trusted_proxies=["10.9.0.0/16"]))
    authz, engine = service(policy, trusted_hops=("192.0.2.0/24",))
    for hop in ("192.0.2.7", "10.9.1.1", "127.0.0.1"):
        authz.answer(hop_peer=hop, method="GET", target="/auth", headers=nginx("/", "203.0.113.9"))
    assert [f.ip for f in engine.seen] == ["203.0.113.9", "203.0.113.9", "127.0.0.1"]


def test_clients_chain_is_believed_only_as_far_as_the_policy_trusts() -> None:
    spoofed = [*nginx("/", "203.0.113.9"), ("x-forwarded-for", "192.0.2.1")]
    authz, engine = service()
    authz.answer(hop_peer="127.0.0.1", method="GET", target="/auth", headers=spoofed)
    assert engine.seen[-1].ip == "203.0.113.9"  # a client cannot name itself
    behind_cdn = Policy(network=NetworkPolicy(trusted_proxies=["203.0.113.0/24"]))
    authz, engine = service(behind_cdn)
    authz.answer(hop_peer="127.0.0.1", method="GET", target="/auth", headers=spoofed)
    assert engine.seen[-1].ip == "192.0.2.1"  # the CDN in front of nginx says who it served


# --- answers --------------------------------------------------------------------------------------


def test_allow_is_an_empty_200_with_the_verdict_headers() -> None:
    authz, _ = service()
    answer = authz.answer(
        hop_peer="127.0.0.1", method="GET", target="/auth", headers=nginx("/people/1", "203.0.113.9")
    )
    assert (answer.status, answer.body) == (200, b"")
    assert dict(answer.headers) == {"X-ScrapeWarden-Score": "0", "X-ScrapeWarden-Action": "allow"}


def caddy(uri: str, client: str, headers: list[tuple[str, str]] = REQUESTS_UA) -> list[tuple[str, str]]:
    return [*headers, ("x-forwarded-method", "GET"), ("x-forwarded-uri", uri), ("x-forwarded-for", client)]


def test_refusals_carry_the_explanation_for_proxies_that_pass_it_on() -> None:
    authz, _ = service()
    answer = authz.answer(
        hop_peer="127.0.0.1", method="GET", target="/auth", headers=caddy("/people/1", "192.0.2.9")
    )
    assert answer.status == 403
    assert json.loads(answer.body)["error"] == "challenge"
    assert dict(answer.headers)["X-ScrapeWarden-Action"] == "challenge"

    throttling = Policy(protected=POLICY.protected, thresholds={"throttle": 30, "challenge": 70, "block": 85})
    authz, _ = service(throttling)
    answer = authz.answer(
        hop_peer="127.0.0.1", method="GET", target="/auth", headers=caddy("/people/1", "192.0.2.9")
    )
    assert answer.status == 429
    assert dict(answer.headers)["Retry-After"] == "60"


def test_challenge_redirect_names_only_the_original_path() -> None:
    authz, _ = service(challenge_url="https://shop.example/check?lang=en")
    raw = caddy("//evil.example/x?a=1\r\nSet-Cookie: x", "192.0.2.9")
    answer = authz.answer(hop_peer="127.0.0.1", method="GET", target="/auth", headers=raw)
    assert answer.status == 302
    location = dict(answer.headers)["Location"]
    assert location.startswith("https://shop.example/check?lang=en&next=%2F%2Fevil.example%2Fx%3Fa%3D1")
    assert "\r" not in location and "\n" not in location


def test_nginx_gets_a_bare_403_and_fetches_the_real_reply_once() -> None:
    throttling = Policy(thresholds={"throttle": 30, "challenge": 70, "block": 85})
    authz, _ = service(throttling)
    raw = nginx("/people/1", "192.0.2.9", [*REQUESTS_UA, ("accept", "text/html")])
    answer = authz.answer(hop_peer="127.0.0.1", method="GET", target="/auth", headers=raw)
    headers = dict(answer.headers)
    assert (answer.status, answer.body, headers["X-ScrapeWarden-Status"]) == (403, b"", "429")
    fetch = [("x-scrapewarden-reference", headers["X-ScrapeWarden-Reference"])]
    reply = authz.answer(hop_peer="127.0.0.1", method="GET", target=REPLY_PATH, headers=fetch)
    assert reply.status == 429
    assert dict(reply.headers)["Retry-After"] == "60"
    assert b"Please slow down" in reply.body
    again = authz.answer(hop_peer="127.0.0.1", method="GET", target=REPLY_PATH, headers=fetch)
    assert again.status == 403  # used up: a generic refusal, never an error
    assert b"Access paused" in again.body or b'"error": "block"' in again.body


def test_decoys_are_never_served_through_forward_auth() -> None:
    decoying = Policy(protected=POLICY.protected, actions={"decoy": True})
    authz, _ = service(decoying)
    raw = caddy("/people/1", "192.0.2.9", [("user-agent", "GPTBot/1.0"), *FIREFOX[2:]])
    answers = [
        authz.answer(hop_peer="127.0.0.1", method="GET", target="/auth", headers=raw) for _ in range(3)
    ]
    assert all(a.status >= 400 for a in answers), [a.status for a in answers]


# --- caching --------------------------------------------------------------------------------------


def test_assets_reuse_an_allow_and_still_reach_the_engine_regularly() -> None:
    authz, engine = service(cache_uses=4)
    for i in range(20):
        answer = authz.answer(
            hop_peer="127.0.0.1",
            method="GET",
            target="/auth",
            headers=nginx(f"/static/{i}.png", "203.0.113.9"),
        )
        assert answer.status == 200
    # The first asset, then one in every five (four reuses between full decisions).
    assert len(engine.seen) == 4
    assert authz.stats.cached == 16


def test_pages_and_records_are_never_cached() -> None:
    authz, engine = service()
    for _ in range(3):
        for uri in ("/", "/people/1", "/people/1.png"):
            authz.answer(
                hop_peer="127.0.0.1", method="GET", target="/auth", headers=nginx(uri, "203.0.113.9")
            )
    # /people/1.png has an asset suffix but is a protected record: decided every time.
    assert len(engine.seen) == 9
    assert authz.stats.cached == 0


def test_cache_is_per_client() -> None:
    authz, engine = service()
    for client in ("203.0.113.1", "203.0.113.2"):
        authz.answer(hop_peer="127.0.0.1", method="GET", target="/auth", headers=nginx("/a.css", client))
    other_software = nginx("/a.css", "203.0.113.1", [("user-agent", "curl/8.0"), ("accept", "*/*")])
    authz.answer(hop_peer="127.0.0.1", method="GET", target="/auth", headers=other_software)
    assert len(engine.seen) == 3


def test_a_refusal_drops_the_clients_cached_allows() -> None:
    authz, engine = service()
    asset = nginx("/static/a.css", "203.0.113.9")
    authz.answer(hop_peer="127.0.0.1", method="GET", target="/auth", headers=asset)
    authz.answer(hop_peer="127.0.0.1", method="GET", target="/auth", headers=nginx("/.env", "203.0.113.9"))
    answer = authz.answer(hop_peer="127.0.0.1", method="GET", target="/auth", headers=asset)
    assert len(engine.seen) == 3
    assert answer.status == 403  # the trap visit marked the address; the asset is refused too


def test_cache_never_stores_refusals_and_is_bounded() -> None:
    from scrapewarden.core.decision import Action

    cache = AssetDecisionCache(seconds=5, uses=3, max_addresses=2)
    cache.put("a", "fp", Decision(Action.THROTTLE, 40), 0.0)
    assert cache.get("a", "fp", 1.0) is None
    for ip in ("a", "b", "c"):
        cache.put(ip, "fp", Decision(Action.ALLOW, 0), 0.0)
    assert cache.get("a", "fp", 1.0) is None  # oldest address evicted
    assert cache.get("c", "fp", 1.0) is not None
    assert cache.get("c", "fp", 6.0) is None  # expired
    assert len(cache) == 1


# --- bad input --------------------------------------------------------------------------------------


def test_missing_uri_is_decided_counted_and_scored() -> None:
    authz, engine = service()
    answer = authz.answer(
        hop_peer="127.0.0.1", method="GET", target="/auth", headers=[*FIREFOX, ("x-real-ip", "203.0.113.9")]
    )
    assert answer.status in (200, 403, 429)
    assert authz.stats.bad_descriptions == 1
    assert "no original URI in the description" in engine.seen[-1].malformed


def test_missing_client_address_is_not_taken_from_the_client() -> None:
    authz, engine = service()
    raw = [*FIREFOX, ("x-original-uri", "/"), ("x-forwarded-for", "192.0.2.1")]
    authz.answer(hop_peer="127.0.0.1", method="GET", target="/auth", headers=raw)
    assert engine.seen[-1].ip == "0.0.0.0"
    assert "no client address in the description" in engine.seen[-1].malformed


def test_garbage_descriptions_never_fail() -> None:
    authz, _ = service()
    for raw in (
        [("x-original-uri", "\x00\xff" * 9000), ("x-real-ip", "not-an-ip")],
        [("x-forwarded-uri", "http://"), ("x-forwarded-for", ",,,")],
        [("x-original-uri", "people"), ("x-original-method", "G E T"), ("x-real-ip", "[::1]:80")],
    ):
        answer = authz.answer(hop_peer="127.0.0.1", method="GET", target="/auth", headers=raw)
        assert answer.status in (200, 403, 429)
    assert authz.stats.bad_descriptions == 3
    assert authz.stats.errors == 0


def test_an_engine_failure_lets_the_request_through_and_is_counted() -> None:
    authz, _ = service(fail=True)
    answer = authz.answer(
        hop_peer="127.0.0.1", method="GET", target="/auth", headers=nginx("/", "203.0.113.9")
    )
    assert answer.status == 200
    assert authz.stats.errors == 1


def test_parse_listen() -> None:
    assert parse_listen("127.0.0.1:9100") == ("127.0.0.1", 9100)
    assert parse_listen("[::1]:9100") == ("::1", 9100)
    with pytest.raises(ValueError):
        parse_listen("9100")


# --- the server over loopback -------------------------------------------------------------------------


async def _exchange(port: int, data: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    chunks = []
    try:
        while chunk := await asyncio.wait_for(reader.read(65536), 5):
            chunks.append(chunk)
    finally:
        writer.close()
    return b"".join(chunks)


def _request(uri: str, client: str, *, close: bool) -> bytes:
    lines = [
        "GET /auth HTTP/1.1",
        "Host: 127.0.0.1",
        "User-Agent: python-requests/2.32.3",
        f"X-Original-URI: {uri}",
        "X-Original-Method: GET",
        f"X-Real-IP: {client}",
    ]
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


@pytest.mark.anyio
async def test_server_answers_pipelined_requests_in_order_and_refuses_garbage() -> None:
    authz, _ = service()
    server = AuthzServer(authz)
    _, port = await server.start("127.0.0.1", 0)
    try:
        health = await _exchange(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert health.startswith(b"HTTP/1.1 200 OK")
        assert b'"status": "ok"' in health

        pipelined = (
            _request("/", "203.0.113.1", close=False)
            + b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
            + _request("/.env", "203.0.113.2", close=True)
        )
        answers = await _exchange(port, pipelined)
        statuses = re.findall(rb"HTTP/1\.1 (\d{3}) ", answers)
        assert statuses == [b"403", b"200", b"403"]
        assert answers.count(b"X-ScrapeWarden-Action: challenge") == 1
        assert answers.count(b"X-ScrapeWarden-Action: block") == 1

        garbage = await _exchange(port, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n")
        assert garbage.startswith(b"HTTP/1.1 400")
        huge = await _exchange(port, b"GET /auth HTTP/1.1\r\nX-Big: " + b"a" * 70000 + b"\r\n\r\n")
        assert huge.startswith(b"HTTP/1.1 431")
    finally:
        await server.stop()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# --- the command ------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_command_serves_and_stops_gracefully_on_sigterm(tmp_path: Path) -> None:
    port = _free_port()
    exe = Path(sys.executable).parent / "scrapewarden"
    log = tmp_path / "authz.log"
    process = subprocess.Popen(
        [str(exe), "authz", "--listen", f"127.0.0.1:{port}", "--state", f"sqlite:///{tmp_path}/state.db"],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        env={**os.environ},
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                    sock.sendall(_request("/.env", "203.0.113.2", close=True))
                    answer = sock.recv(65536)
                break
            except OSError:
                assert process.poll() is None, log.read_text()
                assert time.monotonic() < deadline, "authz did not start"
                time.sleep(0.05)
        assert answer.startswith(b"HTTP/1.1 403")
    finally:
        process.send_signal(signal.SIGTERM)
        returncode = process.wait(timeout=10)
    assert returncode == 0
    text = log.read_text()
    assert "scrapewarden authz stopped" in text
    assert "'refused': 1" in text
    assert (tmp_path / "state.db").exists()  # the refusal was recorded in the shared store
