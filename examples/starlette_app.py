"""People directory on Starlette, protected by scrapewarden.

Run from the repository root:

    uvicorn examples.starlette_app:app
"""

from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from scrapewarden import ScrapeWardenMiddleware

from .people import home_html, profile, profile_html, search

POLICY = Path(__file__).with_name("policy.toml")


async def home(request: Request) -> Response:
    return HTMLResponse(home_html())


async def user(request: Request) -> Response:
    person = profile(request.path_params["user_id"])
    if person is None:
        return JSONResponse({"error": "no such user"}, status_code=404)
    if "text/html" in request.headers.get("accept", ""):
        return HTMLResponse(profile_html(person))
    return JSONResponse(person)


async def find(request: Request) -> Response:
    return JSONResponse(search(request.query_params.get("q", "")))


def create_site() -> Starlette:
    """The site itself, without protection (tests wrap it themselves)."""
    return Starlette(
        routes=[Route("/", home), Route("/users/{user_id}", user), Route("/search", find)],
    )


app = create_site()
app.add_middleware(ScrapeWardenMiddleware, policy=POLICY)
