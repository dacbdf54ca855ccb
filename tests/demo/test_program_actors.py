"""The actors that are real programs (Chromium, Scrapy, wget, httrack) against a real site.

The site is served by uvicorn on a free loopback port, with no protection (regime "none"), and
wrapped in a small ASGI counter so a test can see what the site itself received: pages,
assets, and from which simulated addresses. A test skips, saying why, only when its program is
not installed here.
"""

from __future__ import annotations

import asyncio
import html
import random
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from scrapewarden.demo.actors.base import Target
from scrapewarden.demo.actors.programs import browser_unavailable, hosting_address, residential_address
from scrapewarden.demo.records import demo_secret, record_token
from scrapewarden.lists import load_ip_ranges

SEED = 5
PEOPLE = 400
SECRET = demo_secret(SEED)
FIRST = ("Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken")
LAST = ("Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # Playwright and asyncio subprocesses need asyncio


# ---- a stand-in for the demo site ------------------------------------------------------------


def _name(person_id: int) -> str:
    return f"{FIRST[person_id % len(FIRST)]} {LAST[person_id % len(LAST)]}"


def _handle(person_id: int) -> str:
    return f"person{person_id}"


def _page(title: str, body: str) -> HTMLResponse:
    return HTMLResponse(
        "<!doctype html><html><head><meta charset=utf-8>"
        f"<title>{html.escape(title)}</title>"
        '<link rel="stylesheet" href="/static/site.css"><script src="/static/site.js" defer></script></head>'
        '<body><nav><a href="/">Home</a> <a href="/feed">Feed</a> <a href="/login">Log in</a>'
        '<form action="/search" method="get"><input name="q" type="search"><button>Search</button></form>'
        f'</nav><img src="/static/logo.svg" alt="" width="40" height="40"><main>{body}</main></body></html>'
    )


def _link(person_id: int, by_handle: bool = False) -> str:
    href = f"/@{_handle(person_id)}" if by_handle else f"/users/{person_id}"
    return f'<li><a href="{href}">{html.escape(_name(person_id))}</a></li>'


def _ids(start: int, count: int) -> list[int]:
    return [(start + 37 * n) % PEOPLE + 1 for n in range(count)]


async def home(request: Request) -> Response:
    links = "".join(_link(i, by_handle=n % 3 == 0) for n, i in enumerate(_ids(1, 12)))
    return _page("Home", f"<h1>People</h1><ul>{links}</ul>")


async def feed(request: Request) -> Response:
    posts = "".join(f"<article>{_link(i)}<p>posted something</p></article>" for i in _ids(5, 10))
    return _page("Feed", posts)


def _profile_of(person_id: int) -> Response:
    if not 1 <= person_id <= PEOPLE:
        return _page("Not found", "no such person")
    friends = "".join(_link(i) for i in _ids(person_id * 7, 4))
    return _page(
        _name(person_id),
        f'<h1>{html.escape(_name(person_id))}</h1><p class="record">{record_token(SECRET, person_id)}</p>'
        f'<img src="/static/avatar/{person_id % 8}.svg" alt="">'
        f'<a href="/users/{person_id}/followers">Followers</a><ul>{friends}</ul>',
    )


async def profile(request: Request) -> Response:
    return _profile_of(int(request.path_params["id"]))


async def by_handle(request: Request) -> Response:
    handle = request.path_params["handle"]
    return _profile_of(int(handle[len("person") :]) if handle.startswith("person") else 0)


async def followers(request: Request) -> Response:
    person_id = int(request.path_params["id"])
    page = int(request.query_params.get("page", "1"))
    rows = "".join(
        f'<li><a href="/users/{i}">{html.escape(_name(i))}</a> {record_token(SECRET, i)}</li>'
        for i in _ids(person_id * 11 + page * 5, 8)
    )
    more = f'<a rel="next" href="/users/{person_id}/followers?page={page + 1}">More</a>' if page < 3 else ""
    return _page("Followers", f"<ul>{rows}</ul>{more}")


async def api_user(request: Request) -> Response:
    person_id = int(request.path_params["id"])
    return JSONResponse(
        {"id": person_id, "name": _name(person_id), "record": record_token(SECRET, person_id)}
    )


async def search(request: Request) -> Response:
    q = request.query_params.get("q", "").strip().lower()
    hits = [i for i in range(1, PEOPLE + 1) if q and q in _name(i).lower()][:10]
    return _page("Search", "<ul>" + "".join(_link(i) for i in hits) + "</ul>")


async def login(request: Request) -> Response:
    if request.method == "POST":
        # Parsed by hand: Starlette's form parser needs python-multipart, which the stand-in spares.
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode("utf-8", "replace")).items()}
        if form.get("password") == "demo-password":
            response = RedirectResponse("/feed", status_code=303)
            response.set_cookie("sid", f"session-{form.get('handle', '')}")
            return response
        return _page("Log in", "wrong password")
    return _page(
        "Log in",
        '<form action="/login" method="post"><input name="handle"><input name="password" type="password">'
        "<button>Log in</button></form>",
    )


async def static(request: Request) -> Response:
    path = request.path_params["path"]
    if path.endswith(".css"):
        return Response("body{font-family:sans-serif}", media_type="text/css")
    if path.endswith(".js"):
        return Response("document.documentElement.dataset.ready='1';", media_type="text/javascript")
    svg = '<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"><rect width="4" height="4"/></svg>'
    return Response(svg, media_type="image/svg+xml")


async def robots(request: Request) -> Response:
    return PlainTextResponse("User-agent: *\nDisallow: /api/\nDisallow: /search\n")


def standin_app() -> Starlette:
    return Starlette(
        routes=[
            Route("/", home),
            Route("/feed", feed),
            Route("/users/{id:int}", profile),
            Route("/users/{id:int}/followers", followers),
            Route("/@{handle}", by_handle),
            Route("/api/users/{id:int}", api_user),
            Route("/search", search),
            Route("/login", login, methods=["GET", "POST"]),
            Route("/static/{path:path}", static),
            Route("/robots.txt", robots),
        ]
    )


# ---- serving it, and counting what it received -----------------------------------------------


@dataclass
class Seen:
    """What the site received: paths by kind, statuses, and the X-Forwarded-For addresses."""

    pages: int = 0
    assets: int = 0
    addresses: Counter[str] = field(default_factory=Counter)
    user_agents: Counter[str] = field(default_factory=Counter)
    page_referers: int = 0
    """Page (non-asset) requests that carried a Referer."""
    requests: Counter[str] = field(default_factory=Counter)
    """``METHOD /path`` (no query) of every page request."""
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    """(``METHOD /path``, status) of every page answered."""


class Counting:
    """ASGI wrapper that counts each HTTP request before the site answers it.

    With ``pages_per_address`` it is also a crude per-address limit: past that many pages from
    one X-Forwarded-For address it answers 429, so tests can see actors count refusals.
    """

    def __init__(self, app: Any, seen: Seen, pages_per_address: int | None = None) -> None:
        self.app, self.seen, self.limit = app, seen, pages_per_address
        self.pages_by_address: Counter[str] = Counter()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
            if scope["path"].startswith("/static/"):
                self.seen.assets += 1
            else:
                self.seen.pages += 1
                self.seen.requests[f"{scope['method']} {scope['path']}"] += 1
                self.seen.page_referers += "referer" in headers
            self.seen.addresses[headers.get("x-forwarded-for", "")] += 1
            self.seen.user_agents[headers.get("user-agent", "")] += 1
        if scope["type"] != "http" or scope["path"].startswith("/static/"):
            await self.app(scope, receive, send)
            return
        request = f"{scope['method']} {scope['path']}"
        address = dict(scope["headers"]).get(b"x-forwarded-for", b"").decode("latin-1")
        self.pages_by_address[address] += 1
        if self.limit is not None and self.pages_by_address[address] > self.limit:
            self.seen.statuses[(request, 429)] += 1
            await PlainTextResponse("Too Many Requests", status_code=429)(scope, receive, send)
            return

        async def send_counting(message: Any) -> None:
            if message["type"] == "http.response.start":
                self.seen.statuses[(request, message["status"])] += 1
            await send(message)

        await self.app(scope, receive, send_counting)


@dataclass
class Site:
    target: Target
    seen: Seen


@pytest.fixture
def site() -> Iterator[Site]:
    yield from _serve(pages_per_address=None)


@pytest.fixture
def limited_site() -> Iterator[Site]:
    """The site behind a limit of 30 pages per address (429 after that)."""
    yield from _serve(pages_per_address=30)


def _serve(pages_per_address: int | None) -> Iterator[Site]:
    seen = Seen()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(Counting(standin_app(), seen, pages_per_address), log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True)
    thread.start()
    give_up = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < give_up, "site did not start"
        time.sleep(0.02)
    target = Target(
        base_url=f"http://127.0.0.1:{port}",
        secret=SECRET,
        people=PEOPLE,
        handles=tuple(_handle(i) for i in range(1, 30)),
        first_names=FIRST,
    )
    try:
        yield Site(target, seen)
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def _no_children_left() -> list[str]:
    """Programs of ours still running (by name), to check that actors clean up after themselves."""
    import os

    left = []
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        if ppid == me and name in {"chromium", "chrome", "node", "wget", "httrack", "python", "scrapy"}:
            left.append(name)
    return left


# ---- the tests -------------------------------------------------------------------------------


def test_addresses_are_drawn_from_the_right_lists() -> None:
    rng = random.Random(3)
    ranges = load_ip_ranges()
    for _ in range(20):
        assert hosting_address(rng) in ranges.datacenter
        ip = residential_address(rng)
        assert ip not in ranges.datacenter and ip not in ranges.vpn and ip not in ranges.tor


@pytest.mark.anyio
async def test_people_in_chromium_load_pages_and_assets_and_see_records(site: Site) -> None:
    reason = browser_unavailable()
    if reason:
        pytest.skip(reason)
    from scrapewarden.demo.actors.browser_people import BrowserPerson, run_browser_people

    people = [
        BrowserPerson("walker", "203.0.113.10", clicks=6, time_scale=0.02),
        BrowserPerson("member", "198.51.100.20", clicks=6, logged_in_as="person3", time_scale=0.02),
        BrowserPerson("searcher", "192.0.2.30", clicks=6, time_scale=0.02),
    ]
    results = await run_browser_people(people, site.target, time.monotonic() + 8.0, rng=random.Random(1))

    assert [r.name for r in results] == ["walker", "member", "searcher"]
    for result in results:
        assert result.kind == "human" and result.sessions == 1
        assert result.requests >= 3, result
        assert result.records, result  # profiles carry records
        assert result.outcome == "none"
        assert len(result.latencies_ms) == result.requests
    # The browser loaded the pages' stylesheets, scripts and images, from each person's address.
    assert site.seen.assets >= 3 * 3
    for person in people:
        assert site.seen.addresses[person.ip] > 0
    # A person's browser looks like a person's Chrome, not HeadlessChrome.
    assert not any("Headless" in ua for ua in site.seen.user_agents)
    # The member logged in through the form.
    assert site.seen.requests["GET /login"] >= 1 and site.seen.requests["POST /login"] == 1
    assert site.seen.statuses[("POST /login", 303)] == 1
    assert _no_children_left() == []


@pytest.mark.anyio
async def test_headless_scraper_walks_profiles_with_assets_and_referers(site: Site) -> None:
    reason = browser_unavailable()
    if reason:
        pytest.skip(reason)
    from scrapewarden.demo.actors.headless_scraper import run_headless_scraper

    result = await run_headless_scraper(
        site.target, time.monotonic() + 6.0, random.Random(2), cap=25, time_scale=0.05
    )

    assert result.kind == "scraper" and result.outcome == "none"
    assert 5 <= result.requests <= 25, result
    assert len(result.records) >= 5, result
    # One address, from a hosting network, sent on pages and assets alike.
    (address,) = site.seen.addresses  # every request, pages and assets, carried the same one
    assert address in load_ip_ranges().datacenter
    assert site.seen.assets >= result.requests  # every page brought its stylesheet, script, images
    assert site.seen.page_referers >= result.requests - 1  # all but the first page opened from a page
    # Breadth-first over profiles and followers lists, nothing else.
    walked = {r.split(" ", 1)[1] for r in site.seen.requests if r != "GET /favicon.ico"}
    assert any(p.endswith("/followers") for p in walked)
    assert all(p == "/" or p.startswith(("/users/", "/@")) for p in walked), walked
    assert _no_children_left() == []


@pytest.mark.anyio
async def test_scrapy_spider_crawls_profiles_and_counts_refusals(limited_site: Site) -> None:
    from scrapewarden.demo.actors.scrapy_spider import run_scrapy_spider, scrapy_unavailable

    reason = scrapy_unavailable()
    if reason:
        pytest.skip(reason)
    site = limited_site
    result = await run_scrapy_spider(site.target, time.monotonic() + 6.0, random.Random(4), cap=80)

    assert result.kind == "scraper"
    (address,) = site.seen.addresses  # every request, pages and assets, carried the same one
    assert address in load_ip_ranges().datacenter
    # Every response the site sent was scored, the 429s Scrapy retried included.
    assert result.requests == site.seen.addresses[address]
    assert result.throttled == sum(n for (_, status), n in site.seen.statuses.items() if status == 429) > 0
    assert result.outcome == "throttled"
    # Records came in before the limit, and none with the refusals.
    assert len(result.records) >= 10
    assert result.records_before_first_action == len(result.records)
    # It followed profiles, followers lists and their pages only (robots.txt not even asked).
    paths = {r.split(" ", 1)[1] for r in site.seen.requests}
    assert "/robots.txt" not in paths
    assert any(p.endswith("/followers") for p in paths)
    assert all(p == "/" or p.startswith(("/users/", "/@")) for p in paths), paths
    assert _no_children_left() == []


@pytest.mark.anyio
@pytest.mark.parametrize("tool", ["wget", "httrack"])
async def test_mirror_tool_copies_the_site_and_is_scored(limited_site: Site, tool: str) -> None:
    from scrapewarden.demo.actors.mirror_tools import run_httrack, run_wget, tool_unavailable

    reason = tool_unavailable(tool)
    if reason:
        pytest.skip(reason)
    site = limited_site
    run = run_wget if tool == "wget" else run_httrack
    result = await run(site.target, time.monotonic() + 6.0, random.Random(6))

    assert result.kind == "scraper"
    (address,) = site.seen.addresses  # every request, pages and assets, carried the same one
    assert address in load_ip_ranges().datacenter
    # Every response the site sent, pages and assets, is in the tool's log and was scored, but
    # for those still in flight when the tool was stopped at the deadline (one connection for
    # wget, four for httrack).
    in_flight = 1 if tool == "wget" else 4
    assert 0 <= site.seen.addresses[address] - result.requests <= in_flight
    refused = sum(n for (_, status), n in site.seen.statuses.items() if status == 429)
    assert result.throttled > 0 and 0 <= refused - result.throttled <= in_flight
    # Records came from the pages it kept before the limit (30 pages, some of them profiles).
    assert len(result.records) >= 5
    assert result.records_before_first_action is not None
    assert result.records_before_first_action <= len(result.records)
    assert "/robots.txt" not in {r.split(" ", 1)[1] for r in site.seen.requests}
    assert _no_children_left() == []
