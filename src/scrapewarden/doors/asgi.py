"""ASGI middleware: Starlette, FastAPI, Django (ASGI), Quart, or any ASGI 3 app.

Pure ASGI on purpose (no ``BaseHTTPMiddleware``): it adds one function call and one engine
decision per request and nothing else. It imports no framework.

    app = ScrapeWardenMiddleware(app, policy="policy.toml")

Metrics: mount :func:`metrics_app` where the site wants them (Starlette:
``Mount("/metrics", app=metrics_app())``); it answers loopback clients only unless told
otherwise (docs/metrics.md).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from ..challenge.service import PAGE_PATH, SCRIPT_PATHS, VERIFY_PATH, parse_form, static_reply
from ..core.decision import Action, Decision
from ..core.http_facts import facts_from_http
from ..core.policy import Policy
from ..metrics_http import metrics_asgi_app as metrics_app
from ..state.base import StateStore
from ..warden import Warden
from .responses import Reply, reply_for, wants_html

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

log = logging.getLogger("scrapewarden")

__all__ = ["ScrapeWardenMiddleware", "metrics_app"]

SCOPE_KEY = "scrapewarden.decision"
"""The decision is left in the scope under this key, for apps that want to read it."""


class ScrapeWardenMiddleware:
    """Decide on every HTTP request (and WebSocket handshake) before the app sees it.

    ``policy`` is a :class:`Policy`, a path to a TOML policy file, or None for the defaults.
    Pass ``warden`` instead to share one Warden between several doors. ``account_id`` and
    ``account_created`` are optional callables taking the ASGI scope; they win over the
    headers and cookies named in the policy's ``identity`` section. ``under_attack=True``
    challenges every visitor without clearance (the policy's ``challenge.under_attack``).
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
        under_attack: bool = False,
    ) -> None:
        if warden is not None and under_attack and not warden.policy.challenge.under_attack:
            raise ValueError("under_attack applies to the Warden: pass Warden(..., under_attack=True)")
        self.app = app
        self.warden = warden if warden is not None else Warden(policy, state=state, under_attack=under_attack)
        self.account_id = account_id
        self.account_created = account_created

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http" and kind != "websocket":
            await self.app(scope, receive, send)
            return
        if kind == "http" and scope.get("path") in OWN_PATHS:
            await self._own(scope, receive, send)
            return
        decision = await self._decide(scope)
        if decision is None:
            await self.app(scope, receive, send)
            return
        scope[SCOPE_KEY] = decision
        if decision.action == Action.ALLOW or not decision.enforced:
            await self.app(scope, receive, send)
            return
        actions = self.warden.policy.actions
        accept = _header(scope, b"accept")
        # Browsers get the challenge page; scripts and API calls keep the JSON answer, which
        # holds no challenge (they could not run it anyway).
        if decision.action == Action.CHALLENGE and kind == "http" and wants_html(accept):
            reply: Reply | None = self._challenge_page(scope, decision)
        else:
            reply = reply_for(
                decision, accept=accept, help_url=actions.help_url, retry_after=actions.throttle_retry_after
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

    def _client(self, scope: Scope) -> tuple[str, str, bool]:
        """(client address after trusted proxies, user agent, https?) for our own pages."""
        client = scope.get("client")
        https = scope.get("scheme") == "https"
        facts = facts_from_http(
            self.warden.policy,
            now=self.warden.clock(),
            peer=client[0] if client else "",
            method=scope.get("method") or "GET",
            path=scope.get("path") or "/",
            query="",
            headers=scope.get("headers") or (),
            scheme="https" if https else "http",
        )
        return facts.ip, facts.user_agent, facts.extra.get("scheme") == "https"

    def _challenge_page(self, scope: Scope, decision: Decision) -> Reply:
        """The challenge page in place of the page asked for; it leads back there once passed."""
        raw_path = scope.get("raw_path")
        path = raw_path.decode("latin-1").split("?", 1)[0] if raw_path else scope.get("path") or "/"
        query = (scope.get("query_string") or b"").decode("latin-1")
        ip, ua, _ = self._client(scope)
        return self.warden.challenges.page(
            decision,
            path + ("?" + query if query else ""),
            ip,
            ua,
            lang=_header(scope, b"accept-language") or "en",
        )

    async def _own(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer scrapewarden's own paths: the challenge page, its scripts, and answers."""
        path = scope.get("path")
        method = scope.get("method") or "GET"
        try:
            if path == VERIFY_PATH:
                if method != "POST":
                    reply = plain_reply(405, "Use POST.", [("Allow", "POST")])
                else:
                    body = await _read_body(receive, MAX_FORM)
                    if body is None:
                        reply = plain_reply(413, "Form too large.")
                    else:
                        ip, ua, https = self._client(scope)
                        # A CAPTCHA answer is checked with the provider over the network: in a
                        # worker thread, so the event loop keeps serving everyone else meanwhile.
                        reply = await _in_thread(
                            functools.partial(
                                self.warden.challenges.verify, parse_form(body), ip, ua, secure=https
                            )
                        )
            elif method not in ("GET", "HEAD"):
                reply = plain_reply(405, "Use GET.", [("Allow", "GET, HEAD")])
            elif path == PAGE_PATH:
                ip, ua, _ = self._client(scope)
                query = (scope.get("query_string") or b"").decode("latin-1")
                target = parse_qs(query).get("next", ["/"])[0]
                lang = _header(scope, b"accept-language") or "en"
                reply = self.warden.challenges.page(None, target, ip, ua, lang=lang)
            else:
                reply = static_reply(str(path)) or plain_reply(404, "Not found.")
        except Exception:
            log.exception("scrapewarden: answering %s failed", "own path")
            reply = plain_reply(500, "Something went wrong.")
        await _send_http(scope, send, reply)

    async def _decide(self, scope: Scope) -> Decision | None:
        """The decision for this request; None if deciding failed (we then fail open). With
        shared counters the request is counted on Redis (bounded by its deadline)."""
        try:
            client = scope.get("client")
            raw_path = scope.get("raw_path")
            # ASGI says raw_path has no query string, but not every server agrees.
            path = raw_path.decode("latin-1").split("?", 1)[0] if raw_path else scope.get("path") or "/"
            query = scope.get("query_string") or b""
            facts = self.warden.facts_http(
                peer=client[0] if client else "",
                method=scope.get("method") or "GET",
                path=path,
                query=query.decode("latin-1"),
                headers=scope.get("headers") or (),
                account_id=_call(self.account_id, scope) if self.account_id else None,
                account_created=_call(self.account_created, scope) if self.account_created else None,
                scheme="https" if scope.get("scheme") in ("https", "wss") else "http",
            )
            if self.warden.counters is not None:
                return await self.warden.decide_async(facts)
            return self.warden.decide(facts)
        except Exception:
            # A bug in scrapewarden must not take the site down with it.
            log.exception("scrapewarden: deciding failed; letting the request through")
            return None


OWN_PATHS = frozenset((PAGE_PATH, VERIFY_PATH, *SCRIPT_PATHS))
"""scrapewarden's own paths, answered by the doors themselves (the WSGI door shares these)."""
MAX_FORM = 8192


async def _in_thread(func: Callable[[], Reply]) -> Reply:
    """Run ``func`` in a worker thread: with anyio when it is there (asyncio or trio servers),
    else with asyncio's default executor."""
    try:
        import anyio.to_thread
    except ImportError:
        import asyncio

        return await asyncio.to_thread(func)
    return await anyio.to_thread.run_sync(func)


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The request body, or None once it grows past ``limit`` (the rest is not read)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message.get("type") != "http.request":
            return b"".join(chunks)
        chunk = message.get("body") or b""
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


def plain_reply(status: int, text: str, extra: list[tuple[str, str]] | None = None) -> Reply:
    body = text.encode("ascii") + b"\n"
    headers = [
        ("Content-Type", "text/plain; charset=utf-8"),
        ("Cache-Control", "no-store"),
        ("Content-Length", str(len(body))),
        *(extra or []),
    ]
    return Reply(status=status, headers=headers, body=body, reference="")


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
