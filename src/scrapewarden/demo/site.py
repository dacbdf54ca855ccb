"""A tiny people directory (Starlette) with generated profiles, behind the ASGI middleware.

Deterministic: profile ``n`` is always the same made-up person. The full demo social network
(feed, search, sign-up, Faker people) grows from here; this is its smallest useful form.
"""

from __future__ import annotations

import html
import random

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from ..core.policy import Policy, ProtectedResource
from ..doors.asgi import ScrapeWardenMiddleware
from ..warden import Warden

PEOPLE = 20_000
_FIRST = ["Ana", "Ben", "Chloé", "Dev", "Emeka", "Fatima", "Gus", "Hana", "Ivan", "Jia", "Kofi", "Lena"]
_LAST = ["Okafor", "Silva", "Nguyen", "Müller", "Haddad", "Kowalski", "Tanaka", "Rossi", "Singh", "Berg"]

DEMO_POLICY = Policy(
    protected=[
        ProtectedResource(pattern="/users/{id}", kind="profile"),
        ProtectedResource(pattern="/api/users/{id}", kind="profile"),
        ProtectedResource(pattern="/search", query_param="q", kind="search"),
    ],
    # The demo's clients all connect from 127.0.0.1 and say who they are in X-Forwarded-For,
    # as a trusted front proxy would: that is how one machine plays many addresses.
    network={"trusted_proxies": ["127.0.0.1/32"]},
    identity={"session_cookie": "sid", "account_cookie": "account"},
)


def person(n: int) -> dict[str, object]:
    rng = random.Random(n)
    first, last = rng.choice(_FIRST), rng.choice(_LAST)
    return {
        "id": n,
        "name": f"{first} {last}",
        "handle": f"{first.lower()}{n}",
        "city": rng.choice(["Lagos", "Lyon", "Osaka", "Perth", "Quito", "Riga", "Toronto"]),
        "email": f"{first.lower()}.{last.lower()}{n}@example.org",
    }


async def home(request: Request) -> Response:
    links = "".join(f'<li><a href="/users/{n}">profile {n}</a></li>' for n in range(1, 21))
    return HTMLResponse(
        '<!doctype html><title>demo people</title><link rel="stylesheet" href="/static/app.css">'
        f"<h1>People</h1><ul>{links}</ul>"
        '<a href="/.sw/trap" style="display:none" rel="nofollow">do not follow</a>'
    )


async def profile(request: Request) -> Response:
    raw = request.path_params["id"]
    if not raw.isdigit() or not 1 <= int(raw) <= PEOPLE:
        return PlainTextResponse("no such person", status_code=404)
    p = person(int(raw))
    if request.url.path.startswith("/api/"):
        return JSONResponse(p)
    return HTMLResponse(
        f"<!doctype html><title>{html.escape(str(p['name']))}</title>"
        '<link rel="stylesheet" href="/static/app.css">'
        f"<h1>{html.escape(str(p['name']))}</h1><p>@{p['handle']} · {p['city']}</p>"
    )


async def css(request: Request) -> Response:
    return Response("body{font-family:sans-serif}", media_type="text/css")


async def robots(request: Request) -> Response:
    return PlainTextResponse("User-agent: *\nDisallow: /.sw/\n")


def bare_app() -> Starlette:
    return Starlette(
        routes=[
            Route("/", home),
            Route("/users/{id}", profile),
            Route("/api/users/{id}", profile),
            Route("/static/app.css", css),
            Route("/robots.txt", robots),
        ]
    )


def protected_app(warden: Warden | None = None) -> ScrapeWardenMiddleware:
    return ScrapeWardenMiddleware(bare_app(), warden=warden or Warden(DEMO_POLICY))
