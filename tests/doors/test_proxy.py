"""The reverse proxy over real loopback sockets: forwarding, headers, streaming, limits, errors."""

from __future__ import annotations

import asyncio
import hashlib
import http.client

import aiohttp
import pytest
import requests
from proxy_fixtures import free_port, raw_exchange, serve_proxy, serve_upstream

BROWSER = {
    "User-Agent": "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "Accept-Language": "en-GB,en;q=0.5",
}


@pytest.fixture
def upstream():
    with serve_upstream() as served:
        yield served


def _host_port(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").split(":")
    return host, int(port)


def test_forwards_and_rewrites_hop_by_hop_and_forwarding_headers(upstream):
    port, seen = upstream
    with serve_proxy(port) as (url, _):
        conn = http.client.HTTPConnection(*_host_port(url), timeout=10)
        conn.request(
            "GET",
            "/page?x=1",
            headers={
                **BROWSER,
                "Host": "people.example",
                "Connection": "keep-alive, X-Secret-Hop",
                "X-Secret-Hop": "drop me",
                "Keep-Alive": "timeout=5",
                "TE": "trailers",
                "Proxy-Authorization": "Basic c2VjcmV0",
                "X-Forwarded-For": "203.0.113.7",
                "X-Forwarded-Proto": "https",
                "X-Custom": "kept",
            },
        )
        response = conn.getresponse()
        body = response.read()
        conn.close()
    assert response.status == 200 and body == b"ok GET /page 0"
    got = {name.lower(): value for name, value in seen.headers["/page?x=1"]}
    assert got["x-custom"] == "kept"
    assert got["x-forwarded-for"] == "203.0.113.7, 127.0.0.1"
    assert got["x-forwarded-proto"] == "http"  # what we saw, not what the client claimed
    assert got["x-forwarded-host"] == "people.example"
    assert got["host"] == "people.example"
    for hop in ("x-secret-hop", "keep-alive", "te", "proxy-authorization"):
        assert hop not in got
    # Response side: the upstream's hop-by-hop headers do not reach the client.
    assert response.getheader("X-Hop") is None
    assert response.getheader("Keep-Alive") is None


def test_keep_alive_reuses_upstream_connections(upstream):
    port, seen = upstream
    with serve_proxy(port) as (url, server), requests.Session() as session:
        for i in range(20):
            reply = session.get(f"{url}/item/{i}", headers=BROWSER, timeout=10)
            assert reply.status_code == 200
        assert server.pool.opened == 1
    assert len(seen.peers) == 1
    assert len(seen.paths) == 20


def test_head_and_pipelined_requests_keep_the_connection_usable(upstream):
    port, seen = upstream
    with serve_proxy(port) as (url, _):
        answer = raw_exchange(
            url,
            b"HEAD /a HTTP/1.1\r\nHost: x\r\n\r\n"
            b"GET /b HTTP/1.1\r\nHost: x\r\n\r\n"
            b"GET /c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
    assert answer.count(b"HTTP/1.1 200") == 3
    assert b"ok GET /b 0" in answer and b"ok GET /c 0" in answer
    assert b"ok HEAD" not in answer
    assert seen.paths == ["/a", "/b", "/c"]


def test_chunked_and_sized_bodies_are_forwarded(upstream):
    port, _ = upstream
    data = bytes(range(256)) * 4000
    with serve_proxy(port) as (url, _):
        sized = requests.post(f"{url}/upload", data=data, timeout=10)
        chunked = requests.post(f"{url}/upload", data=iter([data[:1000], data[1000:]]), timeout=10)
    expected = {"total": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    assert sized.json() == expected
    assert chunked.json() == expected


def test_large_bodies_stream_both_ways(upstream):
    port, seen = upstream
    size = 50 * 1024 * 1024
    piece = b"\x5a" * (1 << 20)

    def body():
        for _ in range(size // len(piece)):
            yield piece

    with serve_proxy(port) as (url, server):
        up = requests.put(f"{url}/upload", data=body(), timeout=60)
        assert up.json() == {"total": size, "sha256": hashlib.sha256(piece * 50).hexdigest()}
        digest = hashlib.sha256()
        total = 0
        with requests.get(f"{url}/download?size={size}", stream=True, timeout=60) as down:
            assert down.headers.get("Transfer-Encoding") == "chunked"
            for block in down.iter_content(1 << 16):
                digest.update(block)
                total += len(block)
        assert total == size
        assert digest.hexdigest() == hashlib.sha256(b"x" * size).hexdigest()
        with requests.get(f"{url}/download?size=100000&length=1", timeout=10) as sized:
            assert sized.headers["Content-Length"] == "100000" and len(sized.content) == 100000
    # The upstream read the upload in pieces, never the whole body at once.
    assert 0 < seen.largest_piece <= 4 * 1024 * 1024
    assert server.stats.proxied >= 3


def test_websocket_echo_through_the_proxy(upstream):
    port, _ = upstream

    async def talk(url: str) -> list[object]:
        async with aiohttp.ClientSession() as session, session.ws_connect(f"{url}/ws") as ws:
            await ws.send_str("hello")
            first = await ws.receive_str()
            await ws.send_bytes(b"\x00\x01" * 50000)
            second = await ws.receive_bytes()
            return [first, len(second)]

    with serve_proxy(port) as (url, server):
        assert asyncio.run(talk(url)) == ["echo:hello", 100000]
        assert server.stats.websockets == 1


def test_bad_gateway_when_the_upstream_is_down(caplog):
    with serve_proxy(free_port()) as (url, server):
        reply = requests.get(f"{url}/x", timeout=10)
    assert reply.status_code == 502
    assert server.stats.bad_gateway == 1
    assert any("502 for GET '/x'" in record.getMessage() for record in caplog.records)


def test_gateway_timeout_on_a_slow_upstream(upstream, caplog):
    port, _ = upstream
    with serve_proxy(port, read_timeout=0.3) as (url, server):
        reply = requests.get(f"{url}/slow?s=3", timeout=10)
        after = requests.get(f"{url}/fine", timeout=10)
    assert reply.status_code == 504
    assert after.status_code == 200
    assert server.stats.gateway_timeout == 1
    assert any("504 for GET" in record.getMessage() for record in caplog.records)


def test_too_large_bodies_get_413_and_never_reach_the_upstream(upstream):
    port, seen = upstream
    with serve_proxy(port, max_body=1000) as (url, server):
        sized = requests.post(f"{url}/sized", data=b"a" * 2000, timeout=10)
        chunked = raw_exchange(
            url,
            b"POST /chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            + b"%x\r\n" % 2000
            + b"a" * 2000
            + b"\r\n0\r\n\r\n",
        )
        small = requests.post(f"{url}/small", data=b"a" * 10, timeout=10)
    assert sized.status_code == 413
    assert chunked.startswith(b"HTTP/1.1 413")
    assert small.status_code == 200
    assert "/sized" not in seen.paths
    assert server.stats.too_large == 2


MALFORMED = {
    "content-length and transfer-encoding": (
        b"POST /smuggle HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
    ),
    "two content-lengths": (
        b"POST /smuggle HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 5\r\n\r\nabcde"
    ),
    "bad chunk size": (
        b"POST /smuggle HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n"
    ),
    "transfer-encoding other than chunked": (
        b"POST /smuggle HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"
    ),
    "transfer-encoding on http/1.0": (
        b"POST /smuggle HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    ),
    "obs-fold": b"GET /smuggle HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n",
    "non-ascii header name": b"GET /smuggle HTTP/1.1\r\nHost: x\r\nX-\xc3\xa9: a\r\n\r\n",
    "space before colon": b"GET /smuggle HTTP/1.1\r\nHost : x\r\n\r\n",
    "bad request line": b"GET /smuggle HTTP/9.9 extra\r\nHost: x\r\n\r\n",
    "garbage": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
    "two hosts": b"GET /smuggle HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    "no host on 1.1": b"GET /smuggle HTTP/1.1\r\nX-A: a\r\n\r\n",
    "bare LF in headers": b"GET /smuggle HTTP/1.1\r\nHost: x\nX-A: b\r\n\r\n",
    "negative content-length": b"POST /smuggle HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
    "connect": b"CONNECT example.org:443 HTTP/1.1\r\nHost: example.org:443\r\n\r\n",
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_requests_get_400_and_never_reach_the_upstream(upstream, name):
    port, seen = upstream
    with serve_proxy(port) as (url, server):
        answer = raw_exchange(url, MALFORMED[name])
        counted = server.stats.malformed
    assert answer.startswith((b"HTTP/1.1 400 ", b"HTTP/1.1 405 ")), answer[:80]
    assert b"connection: close" in answer.lower()
    assert seen.paths == []
    assert counted == 1


def test_oversized_heads_get_431(upstream):
    port, seen = upstream
    with serve_proxy(port, max_header_bytes=4096) as (url, server):
        many = raw_exchange(url, b"GET /big HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 8000 + b"\r\n\r\n")
        endless = raw_exchange(url, b"GET /big HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 200_000)
    assert many.startswith(b"HTTP/1.1 431 ")
    assert endless.startswith(b"HTTP/1.1 431 ")
    assert seen.paths == []
    assert server.stats.malformed == 2


def test_slow_request_head_times_out_with_408(upstream):
    port, seen = upstream
    with serve_proxy(port, header_timeout=0.3) as (url, _):
        answer = raw_exchange(url, b"GET /slowloris HTTP/1.1\r\nHost: x\r\n")
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert seen.paths == []
