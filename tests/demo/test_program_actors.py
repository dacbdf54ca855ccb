"""The actors that are real programs (Chromium, Scrapy, wget, httrack) against a real site.

The site is served by uvicorn on a free loopback port, with no protection (regime "none"), and
wrapped in a small ASGI counter so a test can see what the site itself received: pages,
assets, and from which simulated addresses. A test skips, saying why, only when its program is
not installed here.
"""

from __future__ import annotations

import asyncio
import os
import random
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from starlette.responses import PlainTextResponse

from scrapewarden.demo.actors.base import Target
from scrapewarden.demo.actors.mirror_tools import _httrack_responses, _wget_responses
from scrapewarden.demo.actors.programs import (
    browser_unavailable,
    hosting_address,
    residential_address,
    run_program,
)
from scrapewarden.demo.people import site_info
from scrapewarden.demo.records import demo_secret
from scrapewarden.demo.site import create_app
from scrapewarden.lists import load_ip_ranges

SEED = 5
PEOPLE = 400


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # Playwright and asyncio subprocesses need asyncio


# ---- serving the site, and counting what it received -----------------------------------------------


@dataclass
class Seen:
    """What the site received: paths by kind, statuses, and the X-Forwarded-For addresses."""

    pages: int = 0
    assets: int = 0
    asset_paths: set[str] = field(default_factory=set)
    addresses: Counter[str] = field(default_factory=Counter)
    user_agents: Counter[str] = field(default_factory=Counter)
    referred_from: Counter[str] = field(default_factory=Counter)
    """Page (non-asset) requests that carried a Referer, by their Sec-Fetch-Site."""
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
                self.seen.asset_paths.add(scope["path"])
            else:
                self.seen.pages += 1
                self.seen.requests[f"{scope['method']} {scope['path']}"] += 1
                if "referer" in headers:
                    self.seen.referred_from[headers.get("sec-fetch-site", "")] += 1
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
    app = Counting(create_app(seed=SEED, people=PEOPLE, regime="none"), seen, pages_per_address)
    config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False, proxy_headers=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True)
    thread.start()
    give_up = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < give_up, "site did not start"
        time.sleep(0.02)
    info = site_info(SEED, PEOPLE, handles=30)
    target = Target(
        base_url=f"http://127.0.0.1:{port}",
        secret=demo_secret(SEED),
        people=info["people"],
        handles=info["handles"],
        first_names=info["first_names"],
    )
    try:
        yield Site(target, seen)
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def _no_children_left() -> list[str]:
    """Programs of ours still running (by name), to check that actors clean up after themselves."""
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

    member = site.target.handles[3]
    people = [
        BrowserPerson("walker", "203.0.113.10", clicks=6, time_scale=0.02),
        BrowserPerson("member", "198.51.100.20", clicks=6, logged_in_as=member, time_scale=0.02),
        BrowserPerson("searcher", "192.0.2.30", clicks=6, time_scale=0.02),
    ]
    # Bounded by their clicks (a few seconds here); the deadline is only a backstop.
    results = await run_browser_people(people, site.target, time.monotonic() + 15.0, rng=random.Random(1))

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
        # Bounded by the cap (about six seconds here); the deadline is only a backstop.
        site.target,
        time.monotonic() + 20.0,
        random.Random(2),
        cap=24,
        time_scale=0.0,
    )

    assert result.kind == "scraper" and result.outcome == "none"
    # At most the cap of pages, plus as many steps back to the listing they were clicked from.
    assert 5 <= result.requests <= 2 * 24, result
    assert len(result.records) >= 5, result
    # One address, from a hosting network, sent on pages and assets alike.
    (address,) = site.seen.addresses  # every request, pages and assets, carried the same one
    assert address in load_ip_ranges().datacenter
    # Its pages brought their stylesheet, icon and images (each once: the site lets them be cached).
    assert len(site.seen.asset_paths) >= 3
    # Pages were opened by clicking links: a Referer, and the fetch metadata a click sends.
    assert set(site.seen.referred_from) == {"same-origin"}
    assert site.seen.referred_from["same-origin"] * 2 >= result.requests
    # Breadth-first over profiles and followers lists, nothing else.
    walked = {r.split(" ", 1)[1] for r in site.seen.requests if r != "GET /favicon.ico"}
    assert any(p.endswith("/followers") for p in walked)
    assert all(p in ("/", "/feed") or p.startswith(("/users/", "/@")) for p in walked), walked
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
    assert all(p in ("/", "/feed") or p.startswith(("/users/", "/@")) for p in paths), paths
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
    # robots.txt is ignored: the tools went where it says not to (the footer's hidden link).
    assert site.seen.requests["GET /.sw/trap"] == 1
    assert _no_children_left() == []


def _gone(marker: str, within_s: float = 5.0) -> list[int]:
    """Pids still carrying ``marker`` once the kernel has had ``within_s`` to finish the kills:
    a SIGKILL is delivered asynchronously, and on a loaded machine a killed helper can still be
    listed for a moment after the call that killed its group returned."""
    end = time.monotonic() + within_s
    while (left := _processes_with(marker)) and time.monotonic() < end:
        time.sleep(0.05)
    return left


def _processes_with(marker: str) -> list[int]:
    """Pids of processes whose command line contains ``marker``."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    if marker.encode() in f.read():
                        found.append(int(entry))
            except OSError:
                continue
    return found


@pytest.mark.anyio
async def test_a_program_and_everything_it_started_end_at_the_deadline(tmp_path: Path) -> None:
    # A shell that starts a helper in the background and ignores SIGTERM: only SIGKILL ends it.
    marker = f"{os.getpid()}.{random.randrange(10**6)}"
    script = f"trap '' TERM; (exec -a sw-helper-{marker} sleep 30) & exec -a sw-main-{marker} sleep 30"
    run = await run_program(["bash", "-c", script], time.monotonic() + 0.5, grace_s=0.5)

    assert run.timed_out and run.returncode is None
    assert _gone(marker) == []


@pytest.mark.anyio
async def test_a_cancelled_actor_leaves_no_program_behind() -> None:
    marker = f"{os.getpid()}.{random.randrange(10**6)}"
    script = f"(exec -a sw-helper-{marker} sleep 30) & exec -a sw-main-{marker} sleep 30"
    task = asyncio.create_task(run_program(["bash", "-c", script], time.monotonic() + 30))
    while not _processes_with(f"sw-helper-{marker}"):
        await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert _gone(marker) == []


def test_wget_log_lines_become_responses() -> None:
    log = (
        "Last-modified header missing -- time-stamps turned off.\n"
        '2026-11-27 13:31:09 URL:http://127.0.0.1:8000/ [1018/1018] -> "127.0.0.1:8000/index.html" [1]\n'
        "http://127.0.0.1:8000/users/6:\n"
        "2026-11-27 13:31:10 ERROR 429: Too Many Requests.\n"
        "http://127.0.0.1:8000/users/7/followers?page=2:\n"
        "2026-11-27 13:31:10 ERROR 403: Forbidden.\n"
        "FINISHED --2026-11-27 13:31:13--\n"
    )
    assert _wget_responses(log) == [
        (200, "127.0.0.1:8000/index.html"),
        (429, "127.0.0.1:8000/users/6"),
        (403, "127.0.0.1:8000/users/7/followers?page=2"),
    ]


def test_httrack_cache_lines_become_responses() -> None:
    columns = [
        "date",
        "size",
        "flags",
        "statuscode",
        "status",
        "MIME",
        "Etag|Date",
        "URL",
        "localfile",
        "from",
    ]
    rows = [
        [
            "13:31:25",
            "1018/1018",
            "---M--",
            "200",
            "added ('OK')",
            "text/html",
            "",
            "http://h/",
            "/m/h/index.html",
            "",
        ],
        [
            "13:31:26",
            "0/0",
            "------",
            "429",
            "error ('Too Many')",
            "text/html",
            "",
            "http://h/users/6",
            "",
            "",
        ],
        ["13:31:26", "0/0", "------", "-5", "error ('Connect Error')", "", "", "http://h/users/7", "", ""],
        ["garbage"],
    ]
    cache = "\n".join("\t".join(row) for row in [columns, *rows])
    assert _httrack_responses(cache) == [
        (200, "/m/h/index.html"),
        (429, None),
        (-5, None),
    ]
