"""The demo social network over real HTTP: uvicorn on a loopback port, httpx as the client."""

from __future__ import annotations

import json
import random
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
import uvicorn

from scrapewarden.core.policy import Policy
from scrapewarden.demo import pages
from scrapewarden.demo.baseline import PerIpLimit
from scrapewarden.demo.people import DEMO_PASSWORD, REFERENCE_TIME, population
from scrapewarden.demo.records import demo_secret, record_token, records_in
from scrapewarden.demo.site import create_app, demo_policy, site_info, site_of
from scrapewarden.lists import ip_reputation

SEED = 11
PEOPLE = 3000
SECRET = demo_secret(SEED)

CHROME_UA = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
BROWSER = {
    "user-agent": CHROME_UA,
    "accept": "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8",
    "accept-language": "en-GB,en;q=0.9",
    "accept-encoding": "gzip, deflate, br",
    "sec-ch-ua": '"Chromium";v="131", "Google Chrome";v="131", "Not_A Brand";v="24"',
    "sec-ch-ua-mobile": "?0",
    "sec-ch-ua-platform": '"Windows"',
    "sec-fetch-site": "same-origin",
    "sec-fetch-mode": "navigate",
    "sec-fetch-dest": "document",
    "upgrade-insecure-requests": "1",
}
PYTHON_REQUESTS = {
    "user-agent": "python-requests/2.32.3",
    "accept": "*/*",
    "accept-encoding": "gzip, deflate",
}


# -- a real server -----------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve(app: Any) -> Iterator[str]:
    # proxy_headers off: the site's own front (scrapewarden or the baseline) reads X-Forwarded-For.
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=_free_port(),
        log_level="warning",
        access_log=False,
        lifespan="off",
        proxy_headers=False,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{config.port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def client(base: str, ip: str, headers: dict[str, str] | None = None) -> httpx.Client:
    return httpx.Client(base_url=base, headers={**(headers or BROWSER), "x-forwarded-for": ip}, timeout=10.0)


@pytest.fixture(scope="module")
def bare() -> Iterator[str]:
    with serve(create_app(seed=SEED, people=PEOPLE, regime="none")) as base:
        yield base


def residential(n: int) -> str:
    """An address on none of the shipped datacenter/VPN/Tor lists, like a home connection."""
    reputation = ip_reputation(Policy())
    for last in range(n, 255):
        ip = f"81.2.69.{last}"
        if not reputation.check(ip):
            return ip
    raise AssertionError("no clean address found")


# -- people ------------------------------------------------------------------------------------

_PRINT_PERSON = """
import json, time
t = time.perf_counter()
from scrapewarden.demo.people import population
crowd = population(7, 20000)
took = time.perf_counter() - t
p = crowd.get(123)
print(json.dumps({"name": p.name, "email": p.email, "handle": p.handle, "created": p.created,
                  "following": list(crowd.following[123]), "seconds": took}))
"""


def _person_123_in_a_new_process() -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-c", _PRINT_PERSON], capture_output=True, text=True, timeout=120, check=True
    )
    return dict(json.loads(out.stdout))


def test_the_same_seed_makes_the_same_people_in_every_process():
    first, second = _person_123_in_a_new_process(), _person_123_in_a_new_process()
    print(f"20,000 people generated in {first['seconds']:.2f} s and {second['seconds']:.2f} s")
    for key in ("name", "email", "handle", "created", "following"):
        assert first[key] == second[key]
    here = population(7, 20000).get(123)
    assert here is not None and (here.name, here.email) == (first["name"], first["email"])
    other = population(8, 20000).get(123)
    assert other is not None and (other.name, other.email) != (here.name, here.email)


def test_generated_people_are_plausible():
    crowd = population(SEED, PEOPLE)
    handles = [p.handle for p in crowd.people]
    assert len(set(handles)) == PEOPLE
    assert all(re.fullmatch(r"[a-z0-9._]{2,40}", h) for h in handles)
    assert all(p.email.endswith(("example.com", "example.org", "example.net")) for p in crowd.people)
    ages_days = [(REFERENCE_TIME - p.created) / 86400 for p in crowd.people]
    assert min(ages_days) >= 1 and max(ages_days) <= 1500
    counts = [len(crowd.following[i]) for i in range(1, PEOPLE + 1)]
    assert min(counts) >= 5 and max(counts) <= 50
    assert all(i not in crowd.following[i] for i in range(1, PEOPLE + 1))
    # The follower lists are the follow graph read backwards.
    assert all(5 in crowd.following[f] for f in crowd.followers[5])


def test_site_info_tells_actors_what_a_visitor_could_know():
    info = site_info(SEED, PEOPLE)
    crowd = population(SEED, PEOPLE)
    assert info["people"] == PEOPLE and info["password"] == DEMO_PASSWORD
    assert info["handles"] and all(h in crowd.by_handle for h in info["handles"])
    assert len(info["first_names"]) >= 10
    assert all(any(p.name.startswith(n) for p in crowd.people) for n in info["first_names"])


# -- pages and records -------------------------------------------------------------------------


def _card_ids(body: str) -> set[int]:
    return {int(n) for n in re.findall(r'class="card person" data-id="(\d+)"', body)}


def test_every_page_with_personal_data_carries_exactly_its_peoples_tokens(bare):
    crowd = population(SEED, PEOPLE)
    person = crowd.get(42)
    assert person is not None
    with client(bare, residential(10)) as c:
        page = c.get("/users/42")
        assert page.status_code == 200 and person.email in page.text and person.phone in page.text
        assert records_in(page.text, SECRET) == {42}
        assert record_token(SECRET, 42) in page.text

        by_handle = c.get(f"/@{person.handle}")
        assert by_handle.status_code == 200 and records_in(by_handle.text, SECRET) == {42}

        api = c.get("/api/users/42")
        assert api.status_code == 200
        assert api.json()["rid"] == record_token(SECRET, 42) and api.json()["email"] == person.email
        assert records_in(api.text, SECRET) == {42}

        followers = c.get("/users/42/followers")
        assert followers.status_code == 200
        shown = set(crowd.followers[42][:20])
        assert shown and records_in(followers.text, SECRET) == shown == _card_ids(followers.text)

        first = person.name.split()[0]
        found = c.get("/search", params={"q": first})
        assert found.status_code == 200
        ids = _card_ids(found.text)
        assert 42 in ids or len(ids) == 20
        assert ids and len(ids) <= 20 and records_in(found.text, SECRET) == ids
        assert all(first.casefold() in str(crowd.get(i).name).casefold() for i in ids)  # type: ignore[union-attr]

        # Bylines and friend links are mentions, not records: the feed gives none away.
        feed = c.get("/feed")
        assert feed.status_code == 200 and "/users/" in feed.text
        assert records_in(feed.text, SECRET) == set()
        assert records_in(c.get("/").text, SECRET) == set()
        # A record token from another seed's site is not one of ours.
        assert records_in(page.text, demo_secret(SEED + 1)) == set()


def test_search_escapes_what_it_is_given_and_caps_results(bare):
    with client(bare, residential(11)) as c:
        hostile = c.get("/search", params={"q": '<script>alert("x")</script>'})
        assert hostile.status_code == 200
        assert "<script>alert" not in hostile.text and "&lt;script&gt;" in hostile.text
        common = c.get("/search", params={"q": "a"})
        assert len(_card_ids(common.text)) == 20
        empty = c.get("/search")
        assert empty.status_code == 200 and '<form class="stack" method="get" action="/search"' in empty.text
        assert records_in(empty.text, SECRET) == set()


def test_follower_lists_are_paginated(bare):
    crowd = population(SEED, PEOPLE)
    busiest = max(range(1, PEOPLE + 1), key=lambda i: len(crowd.followers[i]))
    assert len(crowd.followers[busiest]) > 20
    with client(bare, residential(12)) as c:
        second = c.get(f"/users/{busiest}/followers", params={"page": 2})
        assert second.status_code == 200
        assert records_in(second.text, SECRET) == set(crowd.followers[busiest][20:40])
        assert 'rel="prev"' in second.text
        assert c.get(f"/users/{busiest}/followers", params={"page": 999}).status_code == 404
        assert c.get(f"/users/{busiest}/followers", params={"page": "x"}).status_code == 400


def test_unknown_people_are_404(bare):
    with client(bare, residential(13)) as c:
        for path in (
            "/users/0",
            f"/users/{PEOPLE + 1}",
            "/users/abc",
            "/users/1x",
            "/users/007",
            "/users/\uff17",
            "/@no.such.person",
            "/nope",
        ):
            assert c.get(path).status_code == 404, path
        api = c.get("/api/users/0")
        assert api.status_code == 404 and api.json() == {"error": "not found"}
        assert c.get("/users/99999999999/followers").status_code == 404
        assert c.get("/static/nothing.css").status_code == 404


def test_pages_load_assets_hide_a_trap_and_robots_keeps_crawlers_out(bare):
    policy = demo_policy()
    assert pages.TRAP_PATH in policy.traps.paths
    with client(bare, residential(14)) as c:
        for path in ("/", "/feed", "/users/1", "/search?q=an", "/users/1/followers", "/login", "/signup"):
            body = c.get(path).text
            assert 'href="/static/site.css"' in body and 'src="/static/app.js"' in body, path
            assert re.search(r'<img class="avatar[^"]*" src="/static/img/avatar-\d\.svg"', body), path
            trap = re.search(r'<a class="sw-hidden" href="([^"]+)" rel="nofollow"', body)
            assert trap and trap.group(1) == pages.TRAP_PATH, path
        css = c.get("/static/site.css")
        assert css.headers["content-type"].startswith("text/css") and ".sw-hidden { display: none" in css.text
        assert c.get("/static/app.js").headers["content-type"].startswith("text/javascript")
        assert c.get("/static/img/avatar-3.svg").text.startswith("<svg")
        assert c.get("/static/img/icon.png").content.startswith(b"\x89PNG")

        robots = c.get("/robots.txt").text
        for line in ("Disallow: /api/", "Disallow: /search", "Disallow: /.sw/", "Allow: /"):
            assert line in robots.splitlines()
        assert f"Sitemap: {bare}/sitemap.xml" in robots
        sitemap = c.get("/sitemap.xml")
        assert sitemap.headers["content-type"].startswith("application/xml")
        assert f"<loc>{bare}/users/1</loc>" in sitemap.text and sitemap.text.count("<loc>") <= 1000


def test_signup_login_logout(bare):
    crowd = population(SEED, PEOPLE)
    with client(bare, residential(15)) as c:
        made = c.post(
            "/signup", data={"name": "Zoë <b>New</b>", "handle": "zoe.new", "password": "correct horse"}
        )
        assert made.status_code == 303 and made.headers["location"] == "/feed"
        assert "httponly" in made.headers["set-cookie"].lower() and c.cookies.get("sid")
        feed = c.get("/feed")
        assert "@zoe.new" in feed.text and "Log out" in feed.text and "Your feed" in feed.text
        profile = c.get("/@zoe.new")
        assert profile.status_code == 200 and "Zoë &lt;b&gt;New&lt;/b&gt;" in profile.text
        new_id = next(iter(records_in(profile.text, SECRET)))
        assert new_id > PEOPLE

        again = c.post("/signup", data={"name": "Other", "handle": "zoe.new", "password": "another one"})
        assert again.status_code == 400 and "taken" in again.text
        bad = c.post("/signup", data={"name": "Bad", "handle": "x", "password": "long enough"})
        assert bad.status_code == 400

        out = c.get("/logout")
        assert out.status_code == 303
        assert "Log in" in c.get("/feed").text and "@zoe.new" not in c.get("/feed").text

        wrong = c.post("/login", data={"handle": "zoe.new", "password": "incorrect"})
        assert wrong.status_code == 401 and "Wrong handle or password" in wrong.text
        back = c.post("/login", data={"handle": "zoe.new", "password": "correct horse"})
        assert back.status_code == 303 and "@zoe.new" in c.get("/feed").text
        c.get("/logout")

        aged = crowd.get(7)
        assert aged is not None
        assert c.post("/login", data={"handle": aged.handle, "password": DEMO_PASSWORD}).status_code == 303
        feed = c.get("/feed")
        assert f"@{aged.handle}" in feed.text
        # The feed shows posts by people this account follows.
        authors = {
            int(n) for n in re.findall(r'<div class="card post">.*?<a href="/users/(\d+)">', feed.text)
        }
        assert authors and authors <= set(crowd.following[7])

        huge = c.post(
            "/login",
            content=b"handle=" + b"a" * 40_000,
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert huge.status_code == 413


# -- the per-IP baseline ----------------------------------------------------------------------


def test_per_ip_baseline_throttles_one_address_and_not_another():
    with (
        serve(create_app(seed=SEED, people=PEOPLE, regime="per_ip")) as base,
        client(base, "203.0.113.7") as busy,
        client(base, "198.51.100.9") as calm,
    ):
        statuses = []
        refused = None
        for n in range(300):
            response = busy.get(f"/users/{n + 1}")
            statuses.append(response.status_code)
            if response.status_code == 429:
                refused = response
                break
        assert statuses[:11] == [200] * 11  # a fresh address gets the burst plus one at once
        assert refused is not None and int(refused.headers["retry-after"]) >= 1
        assert calm.get("/users/1").status_code == 200
        assert calm.get("/static/site.css").status_code == 200


def test_per_ip_baseline_arithmetic_is_nginx_limit_req():
    now = [1000.0]
    limit = PerIpLimit(create_app(seed=SEED, people=PEOPLE, regime="none"), 5.0, 10, clock=lambda: now[0])
    assert [limit.take("a") for _ in range(11)] == [None] * 11
    assert limit.take("a") == 1  # the 12th at the same instant waits
    now[0] += 0.2  # one request's worth drains at 5 r/s
    assert limit.take("a") is None and limit.take("a") is not None
    assert limit.take("b") is None
    now[0] += 3600  # a long-idle address gets its whole burst back
    assert [limit.take("a") for _ in range(11)] == [None] * 11


def test_per_ip_baseline_believes_forwarded_addresses_only_from_the_trusted_proxy():
    limit = PerIpLimit(create_app(seed=SEED, people=PEOPLE, regime="none"))
    xff = [(b"x-forwarded-for", b"198.51.100.1, 203.0.113.5")]
    assert limit.client_address({"client": ("127.0.0.1", 5000), "headers": xff}) == "203.0.113.5"
    assert limit.client_address({"client": ("10.1.1.1", 5000), "headers": xff}) == "10.1.1.1"
    junk = [(b"x-forwarded-for", b"not-an-address")]
    assert limit.client_address({"client": ("127.0.0.1", 5000), "headers": junk}) == "127.0.0.1"


# -- the protected site -----------------------------------------------------------------------


def _walk(base: str, ip: str, headers: dict[str, str], count: int) -> tuple[set[int], list[int]]:
    records: set[int] = set()
    statuses = []
    with client(base, ip, headers) as c:
        for n in range(1, count + 1):
            response = c.get(f"/users/{n}")
            statuses.append(response.status_code)
            if response.status_code == 200:
                records |= records_in(response.text, SECRET)
    return records, statuses


def test_protected_site_refuses_a_python_requests_walker_and_serves_a_browser():
    with serve(create_app(seed=SEED, people=PEOPLE, regime="protected")) as base:
        records, statuses = _walk(base, "203.0.113.20", PYTHON_REQUESTS, 200)
        assert any(s in (403, 429) for s in statuses)
        assert len(records) < 100
        first_refusal = next(i for i, s in enumerate(statuses) if s != 200) + 1
        print(f"python-requests walker: {len(records)} of 200 records, first refusal at {first_refusal}")

        crowd = population(SEED, PEOPLE)
        rng = random.Random(1)
        seen: set[int] = set()
        with client(base, residential(20)) as person:
            for path in [
                "/",
                "/feed",
                *(f"/users/{rng.randint(1, PEOPLE)}" for _ in range(12)),
                "/search?q=ma",
            ]:
                page = person.get(path)
                assert page.status_code == 200, (path, page.status_code, page.text[:200])
                seen |= records_in(page.text, SECRET)
                for asset in (
                    "/static/site.css",
                    "/static/app.js",
                    "/static/img/logo.svg",
                    "/static/img/avatar-1.svg",
                ):
                    assert (
                        person.get(asset, headers={"accept": "*/*", "sec-fetch-dest": "style"}).status_code
                        == 200
                    )
        assert len(seen) >= 12 and all(crowd.get(i) is not None for i in seen)


def test_the_same_walker_takes_everything_from_the_unprotected_site(bare):
    records, statuses = _walk(bare, "203.0.113.21", PYTHON_REQUESTS, 200)
    assert statuses == [200] * 200 and records == set(range(1, 201))


def test_identity_callables_see_the_logged_in_account_and_its_age():
    app = create_app(seed=SEED, people=PEOPLE, regime="protected")
    site = site_of(app)
    crowd = population(SEED, PEOPLE)
    aged = crowd.get(9)
    assert aged is not None
    with serve(app) as base:
        before = time.time()
        with client(base, residential(30)) as young:
            young.post("/signup", data={"name": "Fresh", "handle": "fresh.one", "password": "password123"})
            young_sid = young.cookies["sid"]
        with client(base, residential(31)) as old:
            old.post("/login", data={"handle": aged.handle, "password": DEMO_PASSWORD})
            old_sid = old.cookies["sid"]

        def scope(sid: str | None) -> dict[str, Any]:
            headers = [(b"cookie", f"theme=dark; sid={sid}".encode())] if sid else []
            return {"type": "http", "headers": headers}

        fresh = site.accounts.by_handle("fresh.one")
        assert fresh is not None
        assert site.account_id(scope(young_sid)) == str(fresh.id)
        created = site.account_created(scope(young_sid))
        assert created is not None and before <= created <= time.time()
        assert site.account_id(scope(old_sid)) == str(aged.id)
        assert site.account_created(scope(old_sid)) == aged.created < REFERENCE_TIME
        assert site.account_id(scope(None)) is None and site.account_created(scope("forged")) is None

        # And the engine acts on them: a minutes-old account looking people up fast is stopped,
        # an aged account doing the same from its own address is not.
        rng = random.Random(5)
        ids = rng.sample(range(1, PEOPLE + 1), 60)

        def lookups(ip: str, sid: str) -> list[int]:
            with client(base, ip) as c:
                c.cookies.set("sid", sid)
                out = []
                for person_id in ids:
                    out.append(c.get(f"/users/{person_id}").status_code)
                    c.get("/static/site.css", headers={"accept": "text/css,*/*;q=0.1"})
                return out

        young_statuses = lookups(residential(32), young_sid)
        old_statuses = lookups(residential(33), old_sid)
        print(
            "young account first refusal at",
            next((i for i, s in enumerate(young_statuses) if s != 200), None),
        )
        assert any(s != 200 for s in young_statuses)
        assert old_statuses == [200] * len(ids)
