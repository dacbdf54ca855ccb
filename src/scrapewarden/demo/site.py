"""The demo social network ("Circles"): a Starlette app over generated people, and its factory.

    app = create_app(seed=7, people=20_000, regime="protected")

Pages: ``/`` landing, ``/feed``, profiles at ``/users/{id}`` and ``/@{handle}``, follower lists
at ``/users/{id}/followers``, ``/api/users/{id}`` (JSON), ``/search?q=``, ``/signup``,
``/login``, ``/logout``, ``/robots.txt``, ``/sitemap.xml``, ``/static/...`` and the trap. Every
page that shows a person's record carries that person's record token (``demo.records``); see
``demo.pages`` for what counts as a record.

Regimes: ``protected`` puts :class:`~scrapewarden.doors.asgi.ScrapeWardenMiddleware` in front
with the demo policy (``demo/policy.toml``) and the site's own identity callables; ``per_ip``
puts the nginx-like :class:`~scrapewarden.demo.baseline.PerIpLimit` in front; ``none`` serves
the site bare.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, MutableMapping
from importlib import resources
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs
from xml.sax.saxutils import escape as xml_escape

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from ..core.policy import Policy
from ..doors.asgi import ScrapeWardenMiddleware
from ..policy_file import load_policy
from ..state.base import StateStore
from ..warden import Warden
from . import pages
from .accounts import SESSION_COOKIE, Accounts
from .assets import static_files
from .baseline import PerIpLimit
from .people import Person, Post, population, site_info
from .records import demo_secret, record_token

__all__ = ["REGIMES", "DemoSite", "create_app", "demo_policy", "site_info", "site_of"]

log = logging.getLogger("scrapewarden.demo")

Scope = MutableMapping[str, Any]
Regime = Literal["protected", "per_ip", "none"]
REGIMES: tuple[Regime, ...] = ("protected", "per_ip", "none")

FOLLOWERS_PER_PAGE = 20
FRIENDS_SHOWN = 6
FEED_SIZE = 20
SITEMAP_MAX = 1000
"""Profiles listed in the sitemap: enough for a crawler to have work, bounded per response."""
MAX_FORM_BYTES = 16 * 1024

_HOST_RE = re.compile(r"[A-Za-z0-9.\-]+(:\d{1,5})?|\[[0-9A-Fa-f:.]+\](:\d{1,5})?")
_SCOPE_ACCOUNT = "scrapewarden.demo.account"


def demo_policy() -> Policy:
    """The policy shipped beside the site (``demo/policy.toml``), with environment overrides."""
    with resources.as_file(resources.files(__package__).joinpath("policy.toml")) as path:
        return load_policy(path)


class DemoSite:
    """One running site: the shared generated people plus this site's sign-ups and sessions."""

    def __init__(self, seed: int = 7, people: int = 20_000, clock: Callable[[], float] = time.time) -> None:
        self.seed = seed
        self.population = population(seed, people)
        self.accounts = Accounts(self.population, clock)
        self.secret = demo_secret(seed)
        self._static = static_files()
        self.app = Starlette(routes=self._routes())
        self.app.state.site = self

    # -- identity, for the middleware ------------------------------------------------------

    def viewer(self, scope: Scope) -> Person | None:
        """The logged-in account of this request (looked up once per request)."""
        if _SCOPE_ACCOUNT in scope:
            found: Person | None = scope[_SCOPE_ACCOUNT]
            return found
        person = self.accounts.session_account(_cookie(scope, SESSION_COOKIE))
        scope[_SCOPE_ACCOUNT] = person
        return person

    def account_id(self, scope: Scope) -> str | None:
        person = self.viewer(scope)
        return None if person is None else str(person.id)

    def account_created(self, scope: Scope) -> float | None:
        person = self.viewer(scope)
        return None if person is None else person.created

    # -- routes ----------------------------------------------------------------------------

    def _routes(self) -> list[Route]:
        return [
            Route("/", self.landing),
            Route("/feed", self.feed),
            Route("/users/{id}", self.profile_by_id),
            Route("/@{handle}", self.profile_by_handle),
            Route("/users/{id}/followers", self.followers),
            Route("/api/users/{id}", self.api_user),
            Route("/search", self.search),
            Route("/signup", self.signup, methods=["GET", "POST"]),
            Route("/login", self.login, methods=["GET", "POST"]),
            Route("/logout", self.logout, methods=["GET", "POST"]),
            Route("/robots.txt", self.robots),
            Route("/sitemap.xml", self.sitemap),
            Route(pages.TRAP_PATH, self.trap),
            Route("/static/{path:path}", self.static),
        ]

    def _viewer(self, request: Request) -> Person | None:
        return self.viewer(request.scope)

    def _token(self, person: Person) -> str:
        return record_token(self.secret, person.id)

    def _not_found(self, request: Request, what: str = "That page does not exist.") -> Response:
        return HTMLResponse(pages.not_found(self._viewer(request), what), status_code=404)

    def _person_from_id(self, raw: str) -> Person | None:
        # Only the canonical spelling: "007" or a full-width "７" would be another URL for the
        # same person, i.e. another record id to the policy.
        if not (raw.isascii() and raw.isdigit()) or len(raw) > 9 or raw[0] == "0":
            return None
        return self.accounts.get(int(raw))

    async def landing(self, request: Request) -> Response:
        return HTMLResponse(pages.landing(self._viewer(request)))

    async def feed(self, request: Request) -> Response:
        viewer = self._viewer(request)
        authors = (
            self.accounts.following_of(viewer.id)
            if viewer is not None
            else self.population.public_feed_people
        )
        per_author = 2 if viewer is not None else 1
        items: list[tuple[Post, Person]] = []
        for author_id in authors:
            author = self.accounts.get(author_id)
            if author is not None:
                items.extend((post, author) for post in self.population.posts_of(author_id, per_author))
        items.sort(key=lambda item: -item[0].posted)
        return HTMLResponse(pages.feed(items[:FEED_SIZE], viewer))

    def _profile(self, request: Request, person: Person | None) -> Response:
        if person is None:
            return self._not_found(request, "Nobody here by that name.")
        following = self.accounts.following_of(person.id)
        friends = [f for f in (self.accounts.get(i) for i in following[:FRIENDS_SHOWN]) if f is not None]
        posts = self.population.posts_of(person.id) if person.id <= self.population.n else []
        body = pages.profile(
            person,
            self._token(person),
            followers=len(self.accounts.followers_of(person.id)),
            following=len(following),
            friends=friends,
            posts=posts,
            viewer=self._viewer(request),
        )
        return HTMLResponse(body)

    async def profile_by_id(self, request: Request) -> Response:
        return self._profile(request, self._person_from_id(request.path_params["id"]))

    async def profile_by_handle(self, request: Request) -> Response:
        return self._profile(request, self.accounts.by_handle(request.path_params["handle"]))

    async def followers(self, request: Request) -> Response:
        person = self._person_from_id(request.path_params["id"])
        if person is None:
            return self._not_found(request, "Nobody here by that id.")
        raw_page = request.query_params.get("page", "1")
        if not raw_page.isdigit() or len(raw_page) > 6 or int(raw_page) < 1:
            return HTMLResponse(pages.bad_request(self._viewer(request), "Bad page number."), status_code=400)
        page = int(raw_page)
        ids = self.accounts.followers_of(person.id)
        pages_total = max(1, -(-len(ids) // FOLLOWERS_PER_PAGE))
        if page > pages_total:
            return self._not_found(request, "No such page.")
        shown = ids[(page - 1) * FOLLOWERS_PER_PAGE : page * FOLLOWERS_PER_PAGE]
        cards = []
        for follower_id in shown:
            follower = self.accounts.get(follower_id)
            if follower is not None:
                cards.append(pages.person_card(follower, self._token(follower)))
        body = pages.followers(person, cards, page, pages_total, len(ids), self._viewer(request))
        return HTMLResponse(body)

    async def api_user(self, request: Request) -> Response:
        person = self._person_from_id(request.path_params["id"])
        if person is None:
            return JSONResponse({"error": "not found"}, status_code=404)
        return JSONResponse(
            {
                "id": person.id,
                "rid": self._token(person),
                "name": person.name,
                "handle": person.handle,
                "city": person.city,
                "bio": person.bio,
                "birth_year": person.birth_year,
                "email": person.email,
                "phone": person.phone,
                "created": person.created,
                "followers": len(self.accounts.followers_of(person.id)),
                "following": len(self.accounts.following_of(person.id)),
                "url": f"/users/{person.id}",
            }
        )

    async def search(self, request: Request) -> Response:
        query = request.query_params.get("q", "").strip()[:100]
        found = self.accounts.search(query) if query else []
        cards = [pages.person_card(p, self._token(p)) for p in found]
        return HTMLResponse(pages.search(query, cards, self._viewer(request)))

    async def signup(self, request: Request) -> Response:
        if request.method != "POST":
            return HTMLResponse(pages.signup())
        form = await _form(request)
        if form is None:
            return HTMLResponse(pages.signup("That form was too large."), status_code=413)
        name, handle = form.get("name", ""), form.get("handle", "")
        made = self.accounts.sign_up(name, handle, form.get("password", ""))
        if isinstance(made, str):
            return HTMLResponse(pages.signup(made, name[:80], handle[:30]), status_code=400)
        return self._logged_in(made)

    async def login(self, request: Request) -> Response:
        if request.method != "POST":
            return HTMLResponse(pages.login())
        form = await _form(request)
        if form is None:
            return HTMLResponse(pages.login("That form was too large."), status_code=413)
        handle = form.get("handle", "")
        person = self.accounts.check_password(handle, form.get("password", ""))
        if person is None:
            return HTMLResponse(pages.login("Wrong handle or password.", handle[:30]), status_code=401)
        return self._logged_in(person)

    def _logged_in(self, person: Person) -> Response:
        response = RedirectResponse("/feed", status_code=303)
        response.set_cookie(SESSION_COOKIE, self.accounts.open_session(person), httponly=True, samesite="lax")
        return response

    async def logout(self, request: Request) -> Response:
        self.accounts.close_session(request.cookies.get(SESSION_COOKIE))
        response = RedirectResponse("/", status_code=303)
        response.delete_cookie(SESSION_COOKIE, httponly=True, samesite="lax")
        return response

    async def robots(self, request: Request) -> Response:
        return PlainTextResponse(
            "User-agent: *\n"
            "Disallow: /api/\n"
            "Disallow: /search\n"
            "Disallow: /.sw/\n"
            "Allow: /\n"
            "\n"
            f"Sitemap: {_origin(request)}/sitemap.xml\n"
        )

    async def sitemap(self, request: Request) -> Response:
        origin = xml_escape(_origin(request))
        urls = "".join(
            f"<url><loc>{origin}/users/{n}</loc></url>"
            for n in range(1, min(self.population.n, SITEMAP_MAX) + 1)
        )
        return Response(
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{urls}</urlset>\n',
            media_type="application/xml",
        )

    async def trap(self, request: Request) -> Response:
        return HTMLResponse(pages.trap(self._viewer(request)))

    async def static(self, request: Request) -> Response:
        found = self._static.get(request.path_params["path"])
        if found is None:
            return PlainTextResponse("not found", status_code=404)
        content, media_type = found
        return Response(content, media_type=media_type, headers={"cache-control": "public, max-age=3600"})


# -- helpers ---------------------------------------------------------------------------------


def _cookie(scope: Scope, name: str) -> str | None:
    """A cookie's value from the raw ASGI headers; tolerant of junk, first value wins."""
    for key, value in scope.get("headers") or ():
        if bytes(key).lower() != b"cookie":
            continue
        for pair in bytes(value).decode("latin-1").split(";"):
            found_name, eq, found = pair.partition("=")
            if eq and found_name.strip() == name:
                return found.strip().strip('"') or None
    return None


async def _form(request: Request) -> dict[str, str] | None:
    """A url-encoded form (first value of each field), or None when it is too large."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return None
    fields = parse_qs(body.decode("utf-8", "replace"), max_num_fields=50, keep_blank_values=True)
    return {key: values[0] for key, values in fields.items() if values}


def _origin(request: Request) -> str:
    """scheme://host of the request, with a Host header that is not a plain host replaced."""
    host = request.headers.get("host", "")
    if not _HOST_RE.fullmatch(host):
        host = "localhost"
    return f"{request.url.scheme}://{host}"


# -- the factory -----------------------------------------------------------------------------


def create_app(
    *,
    seed: int = 7,
    people: int = 20_000,
    regime: Regime = "protected",
    policy: Policy | str | Path | None = None,
    state: str | StateStore | None = None,
    clock: Callable[[], float] = time.time,
    under_attack: bool = False,
) -> Any:
    """The demo site as an ASGI app, bare or behind scrapewarden or the per-IP baseline.

    ``policy`` (protected only) defaults to the shipped demo policy; ``state`` is the Warden's
    store (when None: ``SCRAPEWARDEN_STATE``, the policy's ``state`` key, else ``memory://``).
    ``clock`` stamps sign-ups and drives the Warden, so a test can move time. ``under_attack``
    (protected only) challenges every visitor without clearance. The :class:`DemoSite` behind
    any of them is :func:`site_of`.
    """
    site = DemoSite(seed, people, clock)
    if regime == "none":
        return site.app
    if regime == "per_ip":
        return PerIpLimit(site.app)
    if regime != "protected":
        raise ValueError(f"regime must be one of {', '.join(REGIMES)}, not {regime!r}")
    resolved = demo_policy() if policy is None else policy
    warden = Warden(resolved, state=state, clock=clock, under_attack=under_attack)
    if pages.TRAP_PATH not in warden.policy.traps.paths:
        log.warning("the demo links %s as a trap but the policy does not list it", pages.TRAP_PATH)
    return ScrapeWardenMiddleware(
        site.app, warden=warden, account_id=site.account_id, account_created=site.account_created
    )


def site_of(app: Any) -> DemoSite:
    """The :class:`DemoSite` inside an app made by :func:`create_app`."""
    while app is not None:
        state = getattr(app, "state", None)
        site = getattr(state, "site", None) if state is not None else None
        if isinstance(site, DemoSite):
            return site
        app = getattr(app, "app", None)
    raise ValueError("not an app made by create_app")
