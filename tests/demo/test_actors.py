"""The HTTP actors (people, good bot, scrapers) against the real demo site over loopback.

The site is ``create_app(regime="none")`` served by uvicorn on a free port, wrapped in a small
ASGI recorder so each test sees what the site itself received: paths, headers and the simulated
addresses in X-Forwarded-For. Each actor runs for a couple of seconds at most.
"""

from __future__ import annotations

import ipaddress
import itertools
import random
import socket
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import uvicorn

from scrapewarden.demo.actors.addresses import is_clean, residential_addresses
from scrapewarden.demo.actors.base import ActorResult, Target
from scrapewarden.demo.actors.browsers import CHROME_UA, PYTHON_REQUESTS_UA, Browser, chrome, pick_browser
from scrapewarden.demo.actors.client import DEADLINE_SLACK_S
from scrapewarden.demo.actors.good_bot import GOOGLEBOT_UA, GoodBot
from scrapewarden.demo.actors.people import Person, people_mix
from scrapewarden.demo.actors.robots import parse_robots
from scrapewarden.demo.actors.scrapers import (
    AgedAccountScraper,
    NewAccountScraper,
    Persistence,
    ResidentialProxyScraper,
    SearchScraper,
    SequentialScraper,
    Slash24Scraper,
    scrapers_mix,
)
from scrapewarden.demo.people import site_info
from scrapewarden.demo.records import demo_secret, record_token
from scrapewarden.demo.site import create_app
from scrapewarden.lists import load_ip_ranges

SEED = 11
PEOPLE = 300
RUN_S = 2.0
RETURN_SLACK_S = DEADLINE_SLACK_S + 1.0
"""How late past its deadline an actor may return: one request's grace plus scheduling."""


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # aiohttp runs on asyncio only


@dataclass
class Seen:
    method: str
    path: str
    """Path with query string."""
    headers: list[tuple[str, str]]
    status: int = 0

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k == name), None)

    @property
    def address(self) -> str:
        return self.header("x-forwarded-for") or ""


@dataclass
class Recorder:
    """ASGI wrapper that keeps every request the site received, with its final status."""

    app: Any
    seen: list[Seen] = field(default_factory=list)
    refuse: set[str] = field(default_factory=set)
    """Simulated addresses answered with 429 (Retry-After: 0) instead of the site."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        query = scope.get("query_string", b"").decode("latin-1")
        headers = [(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in scope["headers"]]
        seen = Seen(scope["method"], scope["path"] + (f"?{query}" if query else ""), headers)
        self.seen.append(seen)
        if seen.address in self.refuse:
            await send({"type": "http.response.start", "status": 429, "headers": [(b"retry-after", b"0")]})
            await send({"type": "http.response.body", "body": b"slow down"})
            seen.status = 429
            return

        async def recording_send(message: Any) -> None:
            if message["type"] == "http.response.start":
                seen.status = message["status"]
            await send(message)

        await self.app(scope, receive, recording_send)

    def by(self, address: str) -> list[Seen]:
        return [s for s in self.seen if s.address == address]


@dataclass
class Site:
    target: Target
    recorder: Recorder


def _serve(app: Any) -> Iterator[str]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, lifespan="off", log_level="warning", access_log=False, proxy_headers=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    give_up = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < give_up, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(20)
        sock.close()


@pytest.fixture(scope="module")
def served() -> Iterator[Site]:
    recorder = Recorder(create_app(seed=SEED, people=PEOPLE, regime="none"))
    info = site_info(SEED, PEOPLE, handles=30)
    for base in _serve(recorder):
        target = Target(
            base_url=base,
            secret=demo_secret(SEED),
            people=PEOPLE,
            handles=tuple(info["handles"]),
            first_names=tuple(info["first_names"]),
        )
        yield Site(target, recorder)


@pytest.fixture
def site(served: Site) -> Site:
    served.recorder.seen.clear()
    served.recorder.refuse.clear()
    return served


async def _run(actor: Any, site: Site, seconds: float = RUN_S, seed: int = 1) -> ActorResult:
    deadline = time.monotonic() + seconds
    result: ActorResult = await actor.run(site.target, deadline, random.Random(seed))
    assert time.monotonic() <= deadline + RETURN_SLACK_S, "the actor overran its deadline"
    return result


def _profile_ids(seen: list[Seen]) -> list[int]:
    return [
        int(s.path.rsplit("/", 1)[1]) for s in seen if s.path.startswith("/users/") and s.path[7:].isdigit()
    ]


# -- people ------------------------------------------------------------------------------------


_PERSON_SEEDS = itertools.count(100)


def _person(site: Site, browser: Browser, **kw: Any) -> Person:
    fields: dict[str, Any] = {"clicks": 12, "time_scale": 0.005}
    fields.update(kw)
    address = residential_addresses(1, random.Random(next(_PERSON_SEEDS)))[0]
    return Person("person under test", address, browser, **fields)


@pytest.mark.anyio
async def test_a_person_browses_with_assets_referers_and_one_browser(site: Site) -> None:
    person = _person(site, chrome(random.Random(3)))
    result = await _run(person, site, seconds=4.0)
    seen = site.recorder.by(person.ip)
    assert seen and len(seen) == result.requests
    pages = [s for s in seen if s.header("sec-fetch-dest") == "document"]
    assets = [s for s in seen if s.path.startswith("/static/")]
    assert {"/static/site.css", "/static/app.js"} <= {s.path for s in assets}
    assert any(s.path.startswith("/static/img/") for s in assets)
    assert all(s.header("referer") for s in assets), "assets are loaded with the page as referer"
    assert pages[0].header("referer") is None and all(p.header("referer") for p in pages[1:])
    assert len(pages) == person.clicks, "every click is one page view"
    # One browser: the same user agent and client hints on every request; Host first.
    assert {s.header("user-agent") for s in seen} == {person.browser.user_agent}
    assert {s.header("sec-ch-ua") for s in seen} == {dict(person.browser.client_hints)["sec-ch-ua"]}
    assert all(s.headers[0][0] == "host" for s in seen)
    # Friends' profiles are opened from links, never the invisible trap link.
    assert any(s.path.startswith(("/users/", "/@")) for s in pages[1:])
    assert not any(s.path.startswith("/.sw/") for s in seen)
    # Assets come from the browser cache after their first load.
    assert Counter(s.path for s in assets)["/static/site.css"] == 1
    assert result.records, "people see profiles"


@pytest.mark.anyio
async def test_firefox_and_safari_send_no_client_hints(site: Site) -> None:
    rng = random.Random(5)
    browsers = {b.family: b for b in (pick_browser(rng) for _ in range(60))}
    for family in ("firefox", "safari"):
        person = _person(site, browsers[family], clicks=3)
        await _run(person, site)
        seen = site.recorder.by(person.ip)
        assert seen and all(s.header("sec-ch-ua") is None for s in seen)
        assert all(s.header("sec-fetch-mode") for s in seen)
        assert all(s.header("accept-language") == person.browser.accept_language for s in seen)


@pytest.mark.anyio
async def test_a_returning_visitor_has_css_and_js_cached(site: Site) -> None:
    person = _person(site, chrome(), clicks=4, returning=True)
    await _run(person, site)
    paths = {s.path for s in site.recorder.by(person.ip)}
    assert "/static/site.css" not in paths and "/static/app.js" not in paths
    assert any(p.startswith("/static/img/") for p in paths)


@pytest.mark.anyio
async def test_a_logged_in_person_logs_in_and_keeps_the_session(site: Site) -> None:
    person = _person(site, chrome(), clicks=6, logged_in_as=2)
    await _run(person, site)
    seen = site.recorder.by(person.ip)
    login = [s for s in seen if s.method == "POST" and s.path == "/login"]
    assert len(login) == 1 and login[0].status == 303, "logged in with demo-password"
    after = [s for s in seen[seen.index(login[0]) + 1 :] if s.header("sec-fetch-dest") == "document"]
    assert after and all("sid=" in (s.header("cookie") or "") for s in after)


@pytest.mark.anyio
async def test_cookies_sit_where_the_browser_puts_them_and_the_proxy_header_last(site: Site) -> None:
    firefox = next(b for b in (pick_browser(random.Random(i)) for i in range(200)) if b.family == "firefox")
    person = _person(site, firefox, clicks=5, logged_in_as=1)
    await _run(person, site)
    seen = site.recorder.by(person.ip)
    assert seen and all(s.headers[-1][0] == "x-forwarded-for" for s in seen)
    pages = [s for s in seen if s.header("cookie") and s.header("sec-fetch-dest") == "document"]
    assert pages, "the person logged in and sent the session cookie"
    for page in pages:
        names = [k for k, _ in page.headers]
        assert names.index("connection") < names.index("cookie") < names.index("upgrade-insecure-requests")


def test_people_mix_shares_some_addresses_and_keeps_them_residential() -> None:
    people = people_mix(30, random.Random(2), shared_addresses=2, per_shared_address=4, logged_in_share=0.5)
    counts = Counter(p.ip for p in people)
    assert sorted(counts.values(), reverse=True)[:2] == [4, 4] and len(counts) == 30 - 6
    assert all(is_clean(ip) for ip in counts)
    assert all(5 <= p.clicks <= 40 for p in people)
    accounts = [p.logged_in_as for p in people if p.logged_in_as is not None]
    assert accounts and len(accounts) == len(set(accounts)) and len(accounts) < len(people)
    assert len({p.browser.family for p in people}) >= 2


# -- the good bot --------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_the_good_bot_obeys_robots_and_comes_from_googlebot_ranges(site: Site) -> None:
    bot = GoodBot(rate=40.0)  # faster than in the suite, to cover more of the site in the test
    result = await _run(bot, site)
    seen = [s for s in site.recorder.seen if s.header("user-agent") == GOOGLEBOT_UA]
    assert seen[0].path == "/robots.txt"
    assert len(seen) == result.requests and result.requests > 10
    addresses = {s.address for s in seen}
    assert len(addresses) == 1 and addresses.pop() in load_ip_ranges().crawlers["googlebot"]
    with urllib.request.urlopen(site.target.base_url + "/robots.txt") as reply:
        robots = parse_robots(reply.read().decode(), "googlebot")
    assert not robots.allowed("/search?q=ab") and not robots.allowed("/.sw/trap")
    assert all(robots.allowed(s.path) for s in seen)
    assert not any(s.path.startswith(("/api/", "/search", "/.sw/")) for s in seen)
    assert any(not s.path.startswith("/users/") for s in seen[2:]), "it follows links, not only the sitemap"
    assert "/sitemap.xml" in {s.path for s in seen}
    assert len(result.records) > 5, "a search engine indexes public profiles"


# -- scrapers ------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_sequential_scraper_with_python_requests_headers(site: Site) -> None:
    scraper = SequentialScraper("s1", address="159.203.10.5")
    result = await _run(scraper, site)
    seen = site.recorder.by("159.203.10.5")
    ids = _profile_ids(seen)
    assert ids == list(range(1, len(ids) + 1)) and len(ids) > 10
    assert seen[0].headers[0][0] == "host"
    assert [k for k, _ in seen[0].headers] == [
        "host",
        "user-agent",
        "accept-encoding",
        "accept",
        "connection",
        "x-forwarded-for",
    ]
    assert seen[0].header("user-agent") == PYTHON_REQUESTS_UA
    # Records come only from valid tokens: exactly the profiles fetched.
    assert result.records == set(ids)
    assert result.requests == len(seen)


@pytest.mark.anyio
async def test_spoofed_chrome_keeps_the_library_headers(site: Site) -> None:
    scraper = SequentialScraper("s2", user_agent=CHROME_UA, address="159.203.10.6", max_requests=20)
    result = await _run(scraper, site, seconds=10.0)  # ends at its cap
    seen = site.recorder.by("159.203.10.6")
    assert result.requests == len(seen) == 20, "the request cap holds"
    names = {k for k, _ in seen[0].headers}
    assert seen[0].header("user-agent") == CHROME_UA
    assert not names & {"sec-ch-ua", "sec-fetch-mode", "sec-fetch-site", "accept-language"}


@pytest.mark.anyio
async def test_slash24_scraper_round_robins_over_256_addresses(site: Site) -> None:
    scraper = Slash24Scraper("s3", max_rate=400.0, max_requests=PEOPLE)
    result = await _run(scraper, site, seconds=10.0)  # ends at its cap, long before that
    seen = [s for s in site.recorder.seen if s.path.startswith("/users/")]
    addresses = [s.address for s in seen]
    assert len(seen) == result.requests == PEOPLE
    assert len(set(addresses)) == 256
    networks = {ipaddress.ip_network(f"{a}/24", strict=False) for a in addresses}
    assert len(networks) == 1 and all(a in load_ip_ranges().datacenter for a in addresses)
    assert len(set(addresses[:256])) == 256 and addresses[256:] == addresses[: len(addresses) - 256]
    assert _profile_ids(seen) == list(range(1, PEOPLE + 1))


@pytest.mark.anyio
async def test_residential_proxy_scraper_rotates_unrelated_addresses(site: Site) -> None:
    scraper = ResidentialProxyScraper("s4", max_rate=300.0, pool_size=400, max_requests=250)
    result = await _run(scraper, site, seconds=10.0)  # ends at its cap, long before that
    seen = [s for s in site.recorder.seen if s.path.startswith("/users/")]
    per_address = Counter(s.address for s in seen)
    assert result.requests == len(seen) == 250
    assert len(per_address) >= 80
    assert max(per_address.values()) <= 3, "1-3 requests per exit (the pool is not used up)"
    slash24s = {a.rsplit(".", 1)[0] for a in per_address}
    assert len(slash24s) == len(per_address), "no two exits share a /24"
    assert all(is_clean(a) for a in per_address)
    # The scraper's code does not change with the exit: one header set everywhere.
    shapes = {tuple((k, v) for k, v in s.headers if k != "x-forwarded-for") for s in seen}
    assert len(shapes) == 1
    ids = _profile_ids(seen)
    assert ids != sorted(ids) and len(set(ids)) == len(ids)


@pytest.mark.anyio
async def test_new_accounts_sign_up_get_a_session_and_look_people_up(site: Site) -> None:
    scraper = NewAccountScraper("new account 1", rate=20.0, address="167.99.1.10")
    result = await _run(scraper, site)
    seen = site.recorder.by("167.99.1.10")
    signup = [s for s in seen if s.method == "POST" and s.path == "/signup"]
    assert signup and signup[-1].status == 303
    assert scraper.has_session and scraper.handle
    lookups = [s for s in seen if s.path.startswith("/users/")]
    assert lookups and all("sid=" in (s.header("cookie") or "") for s in lookups)
    assert result.records == set(_profile_ids(lookups))


@pytest.mark.anyio
async def test_aged_account_logs_in_and_paces_itself(site: Site) -> None:
    scraper = AgedAccountScraper("s6", account=3, interval_s=2.0, time_scale=0.05, address="167.99.1.11")
    result = await _run(scraper, site)
    seen = site.recorder.by("167.99.1.11")
    login = [s for s in seen if s.method == "POST" and s.path == "/login"]
    assert login and login[0].status == 303 and scraper.has_session
    lookups = [s for s in seen if s.path.startswith("/users/")]
    assert lookups and all("sid=" in (s.header("cookie") or "") for s in lookups)
    # One lookup per 0.1 s at most: at most RUN_S / 0.1 + 1 in the run.
    assert len(lookups) <= RUN_S / 0.1 + 1
    assert result.records <= set(_profile_ids(lookups))


@pytest.mark.anyio
async def test_search_scraper_walks_two_letter_terms_in_order(site: Site) -> None:
    scraper = SearchScraper("s7", address="167.99.1.12", max_requests=30)
    result = await _run(scraper, site, seconds=10.0)  # ends at its cap
    seen = site.recorder.by("167.99.1.12")
    terms = [s.path.split("q=", 1)[1] for s in seen]
    assert terms[:3] == ["aa", "ab", "ac"] and len(terms) == result.requests == 30
    assert seen[0].header("user-agent") == PYTHON_REQUESTS_UA
    assert scraper.cards and result.records
    # Records only from valid tokens: every one is a card the scraper saw.
    assert {f"/users/{i}" for i in result.records} <= scraper.cards


@pytest.mark.anyio
async def test_a_scraper_retries_backs_off_and_gives_up_after_refusals(site: Site) -> None:
    site.recorder.refuse.add("159.203.10.7")
    rules = Persistence(retries=2, backoff_s=0.0, give_up_after=7)
    scraper = SequentialScraper("stubborn", address="159.203.10.7", persistence=rules)
    result = await _run(scraper, site)
    paths = [s.path for s in site.recorder.by("159.203.10.7")]
    # Three attempts at each id (the first and two retries), then the next id; 7 refusals in all.
    assert paths == ["/users/1"] * 3 + ["/users/2"] * 3 + ["/users/3"]
    assert result.throttled == 7 and result.records == set()


@pytest.mark.anyio
async def test_no_actor_starts_past_its_deadline(site: Site) -> None:
    actors: list[Any] = [
        _person(site, chrome()),
        GoodBot(),
        SequentialScraper("late", address="159.203.10.8"),
        *scrapers_mix(random.Random(6), new_accounts=1),
    ]
    for actor in actors:
        result = await _run(actor, site, seconds=0.0)
        assert result.requests == 0 and result.sessions in (0, 1)
    assert site.recorder.seen == []
    people = people_mix(3, random.Random(1), arrivals_over_s=3600.0)
    late = await _run(people[0], site, seconds=0.2)
    assert late.requests == 0 and late.sessions == 0, "a person who never arrived had no session"


@pytest.mark.anyio
async def test_an_actor_never_exceeds_its_max_rate(site: Site) -> None:
    # An upper bound only: a slow machine makes fewer requests, never more.
    scraper = SequentialScraper("paced", address="159.203.10.9", max_rate=10.0)
    result = await _run(scraper, site, seconds=1.0)
    assert 1 <= result.requests <= 11


def test_forged_tokens_count_for_nothing() -> None:
    result = ActorResult("x", "scraper")
    secret = demo_secret(SEED)
    forged = "p9-" + ("0" * 6 if record_token(secret, 9)[-6:] != "0" * 6 else "1" * 6)
    result.saw(200, f"<span>{record_token(secret, 8)}</span><span>{forged}</span>", secret, 0.01)
    assert result.records == {8}


def test_scrapers_mix_has_every_scraper_and_ten_new_accounts() -> None:
    mix = scrapers_mix(random.Random(4))
    names = [s.name for s in mix]
    assert len(mix) == 16
    assert [n for n in names if n.startswith("new account")] == [f"new account {i}" for i in range(1, 11)]
    for number in (1, 2, 3, 4, 6, 7):
        assert any(n.startswith(f"scraper {number}:") for n in names)
    assert all(s.kind == "scraper" for s in mix)
    hosts = [getattr(s, "address", None) for s in mix if getattr(s, "address", None)]
    assert len(hosts) == len(set(hosts)) and all(h in load_ip_ranges().datacenter for h in hosts)
