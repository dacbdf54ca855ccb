"""One tiny Starlette site, served three ways for the middleware benchmark.

- ``bare_app``: the site alone;
- ``scrapewarden_app``: the site behind :class:`~scrapewarden.doors.asgi.ScrapeWardenMiddleware`;
- ``slowapi_app``: the site behind slowapi's ``SlowAPIMiddleware``, an established Python rate
  limiter, as the outside yardstick.

Each is importable for uvicorn (``uvicorn scrapewarden.bench.apps:bare_app``) and is built on
first access, so serving one variant never builds the others. The scrapewarden variant uses
:func:`bench_policy` unless ``SW_BENCH_POLICY`` names a TOML policy file.

The site: ``/`` (a small home page), ``/users/{id}`` (a small HTML profile; the protected
route), ``/static/app.css`` (a static-ish asset).
"""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from ..core.policy import Policy, ProtectedResource

POLICY_ENV = "SW_BENCH_POLICY"
"""Path of a TOML policy for the scrapewarden variant (``--policy``); unset: :func:`bench_policy`.
Not ``SCRAPEWARDEN_*``: those variables are policy overrides."""

SLOWAPI_LIMIT = "1000000/minute"
"""High enough never to trigger during a benchmark: slowapi still counts every request."""

PROXY = "127.0.0.1/32"
"""The load generator plays a reverse proxy on loopback; its X-Forwarded-For is believed."""

SESSION_COOKIE = "sid"

_FIRST = ("Ada", "Bruno", "Chiara", "Dmitri", "Elif", "Femi", "Greta", "Hiro", "Ines", "Jonas")
_LAST = ("Okafor", "Lindqvist", "Moreau", "Tanaka", "Kowalski", "Haddad", "Ferreira", "Novak")
_CITIES = ("Lisbon", "Oslo", "Nairobi", "Osaka", "Quito")

_CSS = "body{font-family:sans-serif;margin:2rem}main{max-width:40rem}h1{font-size:1.4rem}\n"


def bench_policy() -> Policy:
    """The policy of the scrapewarden variant: defaults, plus the protected profile route,
    loopback as a trusted proxy and a session cookie (so each simulated visitor is its own actor)."""
    return Policy.model_validate(
        {
            "network": {"trusted_proxies": [PROXY]},
            "identity": {"session_cookie": SESSION_COOKIE},
            "protected": [ProtectedResource(pattern="/users/{id}", kind="profile", sensitivity=2)],
        }
    )


def resolve_bench_policy(path: str | Path | None = None) -> Policy:
    """The policy at ``path`` (or ``$SW_BENCH_POLICY``), else :func:`bench_policy`."""
    if path is None:
        path = os.environ.get(POLICY_ENV) or None
    if path is None:
        return bench_policy()
    from ..policy_file import load_policy

    return load_policy(path)


# --- the site ---------------------------------------------------------------------------------


async def home(request: Request) -> Response:
    links = "".join(f'<li><a href="/users/{n}">Person {n}</a></li>' for n in range(1, 6))
    return HTMLResponse(
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>People</title>'
        '<link rel="stylesheet" href="/static/app.css"></head>'
        f"<body><main><h1>People directory</h1><ul>{links}</ul></main></body></html>"
    )


async def user(request: Request) -> Response:
    number: int = request.path_params["user_id"]
    name = f"{_FIRST[number % len(_FIRST)]} {_LAST[number % len(_LAST)]}"
    return HTMLResponse(
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(name)}</title>"
        '<link rel="stylesheet" href="/static/app.css"></head>'
        f"<body><main><h1>{html.escape(name)}</h1>"
        f"<p>Member #{number}, lives in {_CITIES[number % len(_CITIES)]}.</p></main></body></html>"
    )


async def stylesheet(request: Request) -> Response:
    return PlainTextResponse(_CSS, media_type="text/css", headers={"cache-control": "max-age=3600"})


def make_bare_app() -> Starlette:
    return Starlette(
        routes=[
            Route("/", home),
            Route("/users/{user_id:int}", user),
            Route("/static/app.css", stylesheet),
        ]
    )


def make_scrapewarden_app(policy: Policy | str | Path | None = None) -> Any:
    """The site behind scrapewarden (in-memory state, the default)."""
    from ..doors.asgi import ScrapeWardenMiddleware

    chosen = policy if isinstance(policy, Policy) else resolve_bench_policy(policy)
    return ScrapeWardenMiddleware(make_bare_app(), policy=chosen, state="memory://")


def make_slowapi_app(limit: str = SLOWAPI_LIMIT) -> Starlette:
    """The site behind slowapi: one default limit keyed by the socket peer, in-memory storage."""
    from slowapi import Limiter, _rate_limit_exceeded_handler
    from slowapi.errors import RateLimitExceeded
    from slowapi.middleware import SlowAPIMiddleware
    from slowapi.util import get_remote_address
    from starlette.middleware import Middleware

    limiter = Limiter(key_func=get_remote_address, default_limits=[limit], storage_uri="memory://")
    app = Starlette(routes=make_bare_app().routes, middleware=[Middleware(SlowAPIMiddleware)])
    app.state.limiter = limiter
    app.add_exception_handler(RateLimitExceeded, _rate_limit_exceeded_handler)  # type: ignore[arg-type]
    return app


_FACTORIES = {
    "bare_app": make_bare_app,
    "scrapewarden_app": make_scrapewarden_app,
    "slowapi_app": make_slowapi_app,
}


def __getattr__(name: str) -> Any:
    # uvicorn resolves "module:attribute" with getattr, so each variant is built on demand.
    factory = _FACTORIES.get(name)
    if factory is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    app = factory()
    globals()[name] = app
    return app
