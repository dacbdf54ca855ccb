"""People directory on FastAPI, protected by scrapewarden.

Run from the repository root:

    uvicorn examples.fastapi_app:app
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, HTTPException
from fastapi.responses import HTMLResponse

from scrapewarden import ScrapeWardenMiddleware

from .people import home_html, profile, search

POLICY = Path(__file__).with_name("policy.toml")


def create_site() -> FastAPI:
    """The site itself, without protection (tests wrap it themselves)."""
    site = FastAPI(title="People directory")

    @site.get("/", response_class=HTMLResponse)
    async def home() -> str:
        return home_html()

    @site.get("/users/{user_id}")
    async def user(user_id: str) -> dict[str, str]:
        person = profile(user_id)
        if person is None:
            raise HTTPException(status_code=404, detail="no such user")
        return person

    @site.get("/search")
    async def find(q: str = "") -> list[dict[str, str]]:
        return search(q)

    return site


app = create_site()
app.add_middleware(ScrapeWardenMiddleware, policy=POLICY)
