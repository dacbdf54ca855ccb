"""ASGI-only behaviour: lifespan and WebSocket handling, raw scopes a server would not produce."""

from __future__ import annotations

import contextlib
import socket
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from scrapewarden.core.decision import Action, Decision
from scrapewarden.doors.asgi import SCOPE_KEY, ScrapeWardenMiddleware

BLOCK = Decision(action=Action.BLOCK, score=95)


def _app(events: list[str]) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> Any:
        events.append("startup")
        yield
        events.append("shutdown")

    async def hello(request: Any) -> PlainTextResponse:
        decision = request.scope.get(SCOPE_KEY)
        return PlainTextResponse(f"hello {decision.action.label if decision else 'none'}")

    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text("welcome")
        await websocket.close()

    return Starlette(
        routes=[Route("/hello", hello), WebSocketRoute("/ws", echo), WebSocketRoute("/blocked-ws", echo)],
        lifespan=lifespan,
    )


def _handshake(url: str, path: str) -> bytes:
    """A WebSocket opening handshake over a raw socket; returns the response head and body start."""
    host, port = url.removeprefix("http://").split(":")
    request = (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        "Accept: application/json\r\n\r\n"
    ).encode()
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(4096)
            if not chunk:
                break
            data += chunk
    return data


def test_lifespan_passes_through(make_warden, run_asgi):
    events: list[str] = []
    warden, engine = make_warden()
    with run_asgi(ScrapeWardenMiddleware(_app(events), warden=warden), lifespan="on") as url:
        assert events == ["startup"]
        reply = httpx.get(f"{url}/hello")
    assert events == ["startup", "shutdown"]
    assert reply.text == "hello allow"
    assert [facts.path for facts in engine.seen] == ["/hello"]


def test_websocket_handshake_is_decided(make_warden, run_asgi):
    warden, engine = make_warden(by_path={"/blocked-ws": BLOCK})
    with run_asgi(ScrapeWardenMiddleware(_app([]), warden=warden)) as url:
        allowed = _handshake(url, "/ws")
        refused = _handshake(url, "/blocked-ws")
    assert allowed.startswith(b"HTTP/1.1 101 ")
    assert refused.startswith(b"HTTP/1.1 403 ")
    assert [facts.path for facts in engine.seen] == ["/ws", "/blocked-ws"]


async def _call(middleware: ScrapeWardenMiddleware, scope: dict[str, Any]) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        sent.append(dict(message))

    await middleware(scope, receive, send)
    return sent


def _scope(**overrides: Any) -> dict[str, Any]:
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/hello",
        "raw_path": b"/hello",
        "query_string": b"",
        "headers": [(b"host", b"x"), (b"accept", b"text/html")],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
    }
    scope.update(overrides)
    return scope


@pytest.mark.anyio
async def test_raw_invalid_utf8_path_is_flagged_and_blocked_page_is_clean(make_warden):
    # Real servers reject or mangle such request lines before the app sees them (the HTTP
    # tests check that); an ASGI server that passes them on must still be handled.
    warden, engine = make_warden(by_path={"/users/": BLOCK})
    middleware = ScrapeWardenMiddleware(_app([]), warden=warden)
    sent = await _call(middleware, _scope(path="/users/\ufffd<x>", raw_path=b"/users/\xff<x>?a=1"))
    assert sent[0]["status"] == 403
    assert b"<x>" not in sent[1]["body"]
    facts = engine.last("/users/")
    assert facts.path == "/users/\xff<x>"
    assert "invalid utf-8 in path" in facts.malformed


@pytest.mark.anyio
async def test_missing_client_and_raw_path_still_decided(make_warden):
    warden, engine = make_warden()
    middleware = ScrapeWardenMiddleware(_app([]), warden=warden)
    scope = _scope(client=None)
    del scope["raw_path"]
    sent = await _call(middleware, scope)
    assert sent[0]["status"] == 200
    facts = engine.last("/hello")
    assert facts.ip == "0.0.0.0"
    assert "peer address is not an IP" in facts.malformed


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
