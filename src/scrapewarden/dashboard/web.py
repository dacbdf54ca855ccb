"""The plumbing every page and API route shares: who is asking, may they, and the headers.

* :class:`Visit` is one request's session and user, resolved from the signed cookie (or, for
  the API, a bearer token).
* :func:`page` and :func:`api` wrap an endpoint with its role check, done on the server for
  every request: a page sends visitors without a session to ``/login``; the API answers 401
  JSON. Both refuse a role too low with 403, and every state change without the session's
  CSRF token with 403 (bearer-token API calls carry no cookie, so they need none).
* :class:`SecurityHeaders` puts the Content-Security-Policy and friends on every response,
  static files and errors included.

Endpoints are plain functions run in a worker thread (the store's calls are blocking).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..state.base import Role, User
from .accounts import allows, user_for_token
from .sessions import COOKIE, Session

if TYPE_CHECKING:
    from .app import Dashboard

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"
MAX_FORM_FIELDS = 50
MAX_BODY_BYTES = 64 * 1024
"""Every form and API body here is small; a bigger one is refused before it is buffered."""


class BodyTooLarge(ValueError):
    pass


CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


@dataclass(slots=True)
class Visit:
    session: Session
    user: User | None
    fresh: bool = False
    """The session is new (or replaced): the response must set the cookie."""
    form: dict[str, str] = field(default_factory=dict)
    via_token: bool = False


def dashboard_of(request: Request) -> Dashboard:
    dash: Dashboard = request.app.state.dashboard
    return dash


def safe_next(target: str | None) -> str:
    """A local path to go back to after login; anything else (other sites, ``//host``) is ``/``."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    if any(ord(ch) < 0x20 for ch in target):
        return "/"
    return target


def client_address(request: Request) -> str:
    return request.client.host if request.client else "0.0.0.0"


async def read_body(request: Request) -> bytes:
    """The request body, read up to ``MAX_BODY_BYTES`` (BodyTooLarge beyond); later reads of
    the body (``request.form()``, ``request.json()``) see the same bytes."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise BodyTooLarge(f"a request body here is at most {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
    body = b"".join(chunks)
    request._body = body  # Starlette's own cache of the body, read by form() and json()
    return body


async def _read_form(request: Request) -> dict[str, str]:
    if request.method in SAFE_METHODS:
        return {}
    await read_body(request)
    kind = request.headers.get("content-type", "")
    if not kind.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        return {}
    form = await request.form(max_files=0, max_fields=MAX_FORM_FIELDS)
    return {k: v for k, v in form.items() if isinstance(v, str)}


def page(
    role: Role | None,
) -> Callable[[Callable[[Request, Visit], Response]], Callable[[Request], Awaitable[Response]]]:
    """An HTML endpoint for ``role`` and above (None: anyone, e.g. the login page)."""

    def wrap(fn: Callable[[Request, Visit], Response]) -> Callable[[Request], Awaitable[Response]]:
        @functools.wraps(fn)
        async def endpoint(request: Request) -> Response:
            dash = dashboard_of(request)
            visit = await run_in_threadpool(dash.visit, request)
            response: Response
            if role is not None and visit.user is None:
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                response = RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
            elif role is not None and visit.user is not None and not allows(visit.user.role, role):
                response = dash.error(request, visit, 403, f"This needs the {role} role.")
            else:
                try:
                    visit.form = await _read_form(request)
                except BodyTooLarge as exc:
                    return dash.error(request, visit, 413, str(exc))
                except Exception:  # malformed body: refused, never a crash
                    return dash.error(request, visit, 400, "That form could not be read.")
                token = visit.form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER)
                if request.method not in SAFE_METHODS and not dash.codec.csrf_ok(visit.session, token):
                    response = dash.error(
                        request, visit, 403, "The form was missing its security token; reload and retry."
                    )
                else:
                    response = await run_in_threadpool(fn, request, visit)
            if visit.fresh:
                dash.set_cookie(request, response, visit.session)
            return response

        return endpoint

    return wrap


def api(role: Role) -> Callable[[Callable[..., Any]], Callable[[Request], Awaitable[Response]]]:
    """A JSON endpoint for ``role`` and above: bearer token or session (+ CSRF header)."""

    def wrap(fn: Callable[..., Any]) -> Callable[[Request], Awaitable[Response]]:
        @functools.wraps(fn)
        async def endpoint(request: Request) -> Response:
            dash = dashboard_of(request)
            visit = await run_in_threadpool(dash.api_visit, request)
            if visit is None or visit.user is None:
                return JSONResponse(
                    {"error": "unauthenticated", "detail": "log in or send Authorization: Bearer <token>"},
                    status_code=401,
                    headers={"www-authenticate": 'Bearer realm="scrapewarden"'},
                )
            if not allows(visit.user.role, role):
                return JSONResponse(
                    {"error": "forbidden", "detail": f"this needs the {role} role"}, status_code=403
                )
            if (
                request.method not in SAFE_METHODS
                and not visit.via_token
                and not dash.codec.csrf_ok(visit.session, request.headers.get(CSRF_HEADER))
            ):
                return JSONResponse(
                    {"error": "forbidden", "detail": f"missing or wrong {CSRF_HEADER} header"},
                    status_code=403,
                )
            body: Any = None
            if request.method not in SAFE_METHODS:
                try:
                    body = await request.json() if await read_body(request) else None
                except BodyTooLarge as exc:
                    return JSONResponse({"error": "bad_request", "detail": str(exc)}, 413)
                except ValueError:
                    return JSONResponse({"error": "bad_request", "detail": "body is not JSON"}, 400)
            result: Response = await run_in_threadpool(fn, request, visit, body)
            return result

        return endpoint

    return wrap


def bearer_visit(dash: Dashboard, request: Request, now: float) -> Visit | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    user = user_for_token(dash.store, token.strip(), now=now)
    if user is None:
        return None
    return Visit(dash.codec.new(user.name, now=now), user, via_token=True)


class SecurityHeaders:
    """Adds the security headers to every HTTP response."""

    def __init__(self, app: ASGIApp, *, hsts: bool = False) -> None:
        self.app = app
        self.hsts = hsts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        secure = self.hsts or scope.get("scheme") == "https"
        static = scope.get("path", "").startswith("/static/")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [
                    (b"content-security-policy", CSP.encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"x-frame-options", b"DENY"),
                    (b"referrer-policy", b"same-origin"),
                    (b"cross-origin-opener-policy", b"same-origin"),
                    (b"cross-origin-resource-policy", b"same-origin"),
                    (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), interest-cohort=()"),
                ]
                if not static:
                    # Pages show personal data: never kept by the browser or a proxy.
                    headers.append((b"cache-control", b"no-store"))
                if secure:
                    headers.append((b"strict-transport-security", b"max-age=31536000"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)


__all__ = ["COOKIE", "CSRF_FIELD", "CSRF_HEADER", "Visit", "api", "page", "safe_next"]


def bad_request(detail: str, status: int = 400) -> JSONResponse:
    """The API's answer to a request it cannot act on (400) or about something missing (404)."""
    return JSONResponse({"error": "bad_request" if status == 400 else "not_found", "detail": detail}, status)
