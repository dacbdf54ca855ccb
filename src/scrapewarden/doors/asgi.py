"""ASGI middleware: Starlette, FastAPI, Django (ASGI), Quart, or any ASGI 3 app.

Pure ASGI on purpose (no ``BaseHTTPMiddleware``): it adds one function call and one engine
decision per request and nothing else. It imports no framework.

    app = ScrapeWardenMiddleware(app, policy="policy.toml")
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

from ..core.decision import Action, Decision
from ..core.policy import Policy
from ..state.base import StateStore
from ..warden import Warden
from .responses import Reply, reply_for

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

log = logging.getLogger("scrapewarden")

SCOPE_KEY = "scrapewarden.decision"
"""The decision is left in the scope under this key, for apps that want to read it."""


class ScrapeWardenMiddleware:
    """Decide on every HTTP request (and WebSocket handshake) before the app sees it.

    ``policy`` is a :class:`Policy`, a path to a TOML policy file, or None for the defaults.
    Pass ``warden`` instead to share one Warden between several doors. ``account_id`` and
    ``account_created`` are optional callables taking the ASGI scope; they win over the
    headers and cookies named in the policy's ``identity`` section.
    """

    def __init__(
        self,
        app: ASGIApp,
        policy: Policy | str | Path | None = None,
        *,
        state: str | StateStore | None = None,
        warden: Warden | None = None,
        account_id: Callable[[Scope], str | None] | None = None,
        account_created: Callable[[Scope], float | None] | None = None,
    ) -> None:
        self.app = app
        self.warden = warden if warden is not None else Warden(policy, state=state)
        self.account_id = account_id
        self.account_created = account_created

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http" and kind != "websocket":
            await self.app(scope, receive, send)
            return
        decision = self._decide(scope)
        if decision is None:
            await self.app(scope, receive, send)
            return
        scope[SCOPE_KEY] = decision
        if decision.action == Action.ALLOW or not decision.enforced:
            await self.app(scope, receive, send)
            return
        actions = self.warden.policy.actions
        reply = reply_for(
            decision,
            accept=_header(scope, b"accept"),
            help_url=actions.help_url,
            retry_after=actions.throttle_retry_after,
        )
        if reply is None:
            await self.app(scope, receive, send)
            return
        if decision.tarpit_seconds > 0 and reply.status != 429:
            # Imported here: anyio comes with Starlette but not with every ASGI server.
            import anyio

            await anyio.sleep(decision.tarpit_seconds)
        if kind == "http":
            await _send_http(scope, send, reply)
        else:
            await _refuse_websocket(scope, receive, send, reply)

    def _decide(self, scope: Scope) -> Decision | None:
        """The decision for this request; None if deciding failed (we then fail open)."""
        try:
            client = scope.get("client")
            raw_path = scope.get("raw_path")
            # ASGI says raw_path has no query string, but not every server agrees.
            path = raw_path.decode("latin-1").split("?", 1)[0] if raw_path else scope.get("path") or "/"
            query = scope.get("query_string") or b""
            return self.warden.decide_http(
                peer=client[0] if client else "",
                method=scope.get("method") or "GET",
                path=path,
                query=query.decode("latin-1"),
                headers=scope.get("headers") or (),
                account_id=_call(self.account_id, scope) if self.account_id else None,
                account_created=_call(self.account_created, scope) if self.account_created else None,
                scheme="https" if scope.get("scheme") in ("https", "wss") else "http",
            )
        except Exception:
            # A bug in scrapewarden must not take the site down with it.
            log.exception("scrapewarden: deciding failed; letting the request through")
            return None


def _call(func: Callable[[Scope], Any], scope: Scope) -> Any:
    try:
        return func(scope)
    except Exception:
        log.exception("scrapewarden: identity callable %r failed", func)
        return None


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers") or ():
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


async def _send_http(scope: Scope, send: Send, reply: Reply) -> None:
    body = b"" if scope.get("method") == "HEAD" else reply.body
    await send({"type": "http.response.start", "status": reply.status, "headers": reply.raw_headers()})
    await send({"type": "http.response.body", "body": body})


async def _refuse_websocket(scope: Scope, receive: Receive, send: Send, reply: Reply) -> None:
    message = await receive()
    if message.get("type") != "websocket.connect":
        return
    if "websocket.http.response" in (scope.get("extensions") or {}):
        # The server can send a real HTTP response instead of the upgrade: the client sees
        # the same 429/403 and explanation as a plain request would.
        await send(
            {"type": "websocket.http.response.start", "status": reply.status, "headers": reply.raw_headers()}
        )
        await send({"type": "websocket.http.response.body", "body": reply.body})
        return
    # 1008: policy violation. Closing before accepting makes the server answer 403.
    await send({"type": "websocket.close", "code": 1008})
