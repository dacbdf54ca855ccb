"""WSGI middleware: Flask, Django (WSGI), Bottle, or any WSGI app.

app.wsgi_app = ScrapeWardenWSGIMiddleware(app.wsgi_app, policy="policy.toml")   # Flask
application = ScrapeWardenWSGIMiddleware(get_wsgi_application(), policy=...)     # Django
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from ..challenge.service import PAGE_PATH, VERIFY_PATH, parse_form, static_reply
from ..core.decision import Action, Decision
from ..core.http_facts import facts_from_http
from ..core.policy import Policy
from ..state.base import StateStore
from ..warden import Warden
from .asgi import MAX_FORM, OWN_PATHS, plain_reply
from .responses import Reply, reply_for, wants_html

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]

log = logging.getLogger("scrapewarden")

ENVIRON_KEY = "scrapewarden.decision"
"""The decision is left in the environ under this key, for apps that want to read it."""


class ScrapeWardenWSGIMiddleware:
    """Decide on every request before the WSGI app sees it.

    Arguments as for :class:`scrapewarden.ScrapeWardenMiddleware`; the identity callables take
    the WSGI environ.
    """

    def __init__(
        self,
        app: WSGIApp,
        policy: Policy | str | Path | None = None,
        *,
        state: str | StateStore | None = None,
        warden: Warden | None = None,
        account_id: Callable[[Environ], str | None] | None = None,
        account_created: Callable[[Environ], float | None] | None = None,
        under_attack: bool = False,
    ) -> None:
        if warden is not None and under_attack and not warden.policy.challenge.under_attack:
            raise ValueError("under_attack applies to the Warden: pass Warden(..., under_attack=True)")
        self.app = app
        self.warden = warden if warden is not None else Warden(policy, state=state, under_attack=under_attack)
        self.account_id = account_id
        self.account_created = account_created

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") in OWN_PATHS:
            return self._send(environ, start_response, self._own(environ))
        decision = self._decide(environ)
        if decision is None:
            return self.app(environ, start_response)
        environ[ENVIRON_KEY] = decision
        if decision.action == Action.ALLOW or not decision.enforced:
            return self.app(environ, start_response)
        actions = self.warden.policy.actions
        accept = environ.get("HTTP_ACCEPT")
        # Browsers get the challenge page; scripts and API calls keep the JSON answer.
        if decision.action == Action.CHALLENGE and wants_html(accept):
            reply: Reply | None = self._challenge_page(environ, decision)
        else:
            reply = reply_for(
                decision, accept=accept, help_url=actions.help_url, retry_after=actions.throttle_retry_after
            )
        if reply is None:
            return self.app(environ, start_response)
        if decision.tarpit_seconds > 0 and reply.status != 429:
            time.sleep(decision.tarpit_seconds)
        return self._send(environ, start_response, reply)

    @staticmethod
    def _send(environ: Environ, start_response: StartResponse, reply: Reply) -> Iterable[bytes]:
        start_response(f"{reply.status} {reply.reason}", reply.headers)
        return [b"" if environ.get("REQUEST_METHOD") == "HEAD" else reply.body]

    def _client(self, environ: Environ) -> tuple[str, str, bool]:
        """(client address after trusted proxies, user agent, https?) for our own pages."""
        facts = facts_from_http(
            self.warden.policy,
            now=self.warden.clock(),
            peer=environ.get("REMOTE_ADDR") or "",
            method=environ.get("REQUEST_METHOD") or "GET",
            path=environ.get("PATH_INFO") or "/",
            query="",
            headers=_headers(environ),
            scheme=environ.get("wsgi.url_scheme") or "http",
        )
        return facts.ip, facts.user_agent, facts.extra.get("scheme") == "https"

    def _challenge_page(self, environ: Environ, decision: Decision) -> Reply:
        """The challenge page in place of the page asked for; it leads back there once passed."""
        query = environ.get("QUERY_STRING") or ""
        ip, ua, _ = self._client(environ)
        target = _raw_path(environ) + ("?" + query if query else "")
        lang = environ.get("HTTP_ACCEPT_LANGUAGE") or "en"
        return self.warden.challenges.page(decision, target, ip, ua, lang=lang)

    def _own(self, environ: Environ) -> Reply:
        """Answer scrapewarden's own paths: the challenge page, its scripts, and answers."""
        path = environ.get("PATH_INFO")
        method = environ.get("REQUEST_METHOD") or "GET"
        try:
            if path == VERIFY_PATH:
                if method != "POST":
                    return plain_reply(405, "Use POST.", [("Allow", "POST")])
                body = _read_form(environ)
                if body is None:
                    return plain_reply(413, "Form too large.")
                ip, ua, https = self._client(environ)
                return self.warden.challenges.verify(parse_form(body), ip, ua, secure=https)
            if method not in ("GET", "HEAD"):
                return plain_reply(405, "Use GET.", [("Allow", "GET, HEAD")])
            if path == PAGE_PATH:
                ip, ua, _ = self._client(environ)
                target = parse_qs(environ.get("QUERY_STRING") or "").get("next", ["/"])[0]
                lang = environ.get("HTTP_ACCEPT_LANGUAGE") or "en"
                return self.warden.challenges.page(None, target, ip, ua, lang=lang)
            return static_reply(str(path)) or plain_reply(404, "Not found.")
        except Exception:
            log.exception("scrapewarden: answering %s failed", "own path")
            return plain_reply(500, "Something went wrong.")

    def _decide(self, environ: Environ) -> Decision | None:
        """The decision for this request; None if deciding failed (we then fail open)."""
        try:
            # With shared counters (Redis state) the request is counted on Redis from this
            # worker thread via the Warden's loop thread, waiting at most the counters' deadline
            # (see Warden.decide_shared_sync); otherwise this is Warden.decide.
            facts = self.warden.facts_http(
                peer=environ.get("REMOTE_ADDR") or "",
                method=environ.get("REQUEST_METHOD") or "GET",
                path=_raw_path(environ),
                query=environ.get("QUERY_STRING") or "",
                headers=_headers(environ),
                account_id=_call(self.account_id, environ) if self.account_id else None,
                account_created=_call(self.account_created, environ) if self.account_created else None,
                scheme=environ.get("wsgi.url_scheme") or "http",
            )
            return self.warden.decide_shared_sync(facts)
        except Exception:
            # A bug in scrapewarden must not take the site down with it.
            log.exception("scrapewarden: deciding failed; letting the request through")
            return None


def _read_form(environ: Environ) -> bytes | None:
    """The form body, or None when it declares or reaches more than ``MAX_FORM`` bytes."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return None
    if length < 0 or length > MAX_FORM:
        return None
    stream = environ.get("wsgi.input")
    body = stream.read(length) if stream is not None and length else b""
    return body if isinstance(body, bytes) else None


def _raw_path(environ: Environ) -> str:
    """The path as the client sent it (percent-encoding intact) when the server tells us."""
    uri = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if isinstance(uri, str) and uri.startswith("/"):
        return uri.split("?", 1)[0]
    scope = environ.get("asgi.scope")  # a2wsgi: the ASGI scope still has the raw bytes
    if isinstance(scope, dict):
        raw = scope.get("raw_path")
        if isinstance(raw, bytes) and raw.startswith(b"/"):
            return raw.decode("latin-1").split("?", 1)[0]
    path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
    return path or "/"


def _headers(environ: Environ) -> list[tuple[bytes, bytes]]:
    # WSGI folds headers into HTTP_* keys; servers insert them in request order.
    headers: list[tuple[bytes, bytes]] = []
    for key, value in environ.items():
        if key.startswith("HTTP_") and isinstance(value, str):
            name = key[5:].replace("_", "-").lower()
            headers.append((name.encode("latin-1", "replace"), value.encode("latin-1", "replace")))
    for key, header in (("CONTENT_TYPE", b"content-type"), ("CONTENT_LENGTH", b"content-length")):
        value = environ.get(key)
        if value and isinstance(value, str):
            headers.append((header, value.encode("latin-1", "replace")))
    return headers


def _call(func: Callable[[Environ], Any], environ: Environ) -> Any:
    try:
        return func(environ)
    except Exception:
        log.exception("scrapewarden: identity callable %r failed", func)
        return None
