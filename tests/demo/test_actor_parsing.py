"""What the HTTP actors read from pages: robots.txt rules, links, assets, sitemaps; addresses."""

from __future__ import annotations

import random

from scrapewarden.core.facts import RequestFacts
from scrapewarden.core.policy import Policy
from scrapewarden.demo.actors.addresses import (
    googlebot_address,
    hosting_address,
    hosting_slash24,
    is_clean,
    residential_addresses,
)
from scrapewarden.demo.actors.browsers import chrome, library_headers, pick_browser
from scrapewarden.demo.actors.pages import assets_in, is_followers, is_profile, links_in, sitemap_locations
from scrapewarden.demo.actors.robots import Robots, parse_robots
from scrapewarden.demo.actors.scrapers import search_terms
from scrapewarden.lists import client_sanity, load_ip_ranges

ROBOTS = """\
User-agent: *
Disallow: /private/
Disallow: /search
Allow: /search/help$

# Googlebot's own group replaces the * group for it.
User-agent: Googlebot
User-agent: bingbot
Disallow: /api/
Disallow: /*.json$
Allow: /api/public/
Sitemap: http://example.test/sitemap.xml
"""


def test_robots_uses_the_crawlers_own_group_and_the_longest_rule() -> None:
    google = parse_robots(ROBOTS, "googlebot")
    assert not google.allowed("/api/users/1")
    assert google.allowed("/api/public/1"), "the longer Allow wins"
    assert not google.allowed("/export.json") and google.allowed("/export.jsonp"), "$ anchors"
    assert google.allowed("/private/x"), "the * group does not apply to Googlebot"
    assert google.sitemaps == ["http://example.test/sitemap.xml"]
    other = parse_robots(ROBOTS, "somebot")
    assert not other.allowed("/private/x") and not other.allowed("/search?q=a")
    assert other.allowed("/search/help") and not other.allowed("/search/help/more")
    assert other.allowed("/users/1")


def test_robots_ties_go_to_allow_and_robots_txt_is_always_fetchable() -> None:
    robots = parse_robots("User-agent: *\nDisallow: /a\nAllow: /a\nDisallow: /\n", "googlebot")
    assert robots.allowed("/a/b")
    assert not robots.allowed("/b")
    assert robots.allowed("/robots.txt")
    assert not Robots(disallow_all=True).allowed("/")


def test_robots_ignores_junk_and_empty_disallow() -> None:
    robots = parse_robots("garbage\nUser-agent: *\nDisallow:\n\x00:\n", "googlebot")
    assert robots.allowed("/anything")


def test_links_mark_hidden_and_nofollow_and_assets_are_listed_once() -> None:
    body = (
        '<link rel="stylesheet" href="/static/site.css"><link rel=icon href=/static/img/icon.png>'
        "<script src='/static/app.js' defer></script>"
        '<a class="hidden-xs" href="/users/3#top">A</a>'
        '<a class="sw-hidden" href="/.sw/trap" rel="nofollow" aria-hidden="true">t</a>'
        '<a href="/@ana.silva" style="display: none">h</a>'
        '<a href="/search?q=a&amp;page=2">s</a><a href="mailto:x@example.org">m</a>'
        '<img src="/static/img/a.svg"><img src="/static/img/a.svg"><img src="data:image/png;base64,AA">'
    )
    links = links_in(body)
    assert [(link.href, link.hidden, link.nofollow) for link in links] == [
        ("/users/3", False, False),
        ("/.sw/trap", True, True),
        ("/@ana.silva", True, False),
        ("/search?q=a&page=2", False, False),
    ]
    assert assets_in(body) == [
        ("style", "/static/site.css"),
        ("image", "/static/img/icon.png"),
        ("script", "/static/app.js"),
        ("image", "/static/img/a.svg"),
    ]
    assert is_profile("/users/12") and is_profile("/@ana.silva") and not is_profile("/users/12/followers")
    assert is_followers("/users/12/followers")


def test_sitemap_locations() -> None:
    body = "<urlset><url><loc> http://h/users/1 </loc></url><url><loc>http://h/a?b=1&amp;c=2</loc></url>"
    assert sitemap_locations(body) == ["http://h/users/1", "http://h/a?b=1&c=2"]


def test_addresses_are_where_they_claim_to_be() -> None:
    rng = random.Random(8)
    ranges = load_ip_ranges()
    homes = residential_addresses(200, rng)
    assert len({a.rsplit(".", 1)[0] for a in homes}) == 200 and all(is_clean(a) for a in homes)
    assert hosting_address(rng) in ranges.datacenter
    block = hosting_slash24(rng)
    assert len(set(block)) == 256 and len({a.rsplit(".", 1)[0] for a in block}) == 1
    assert googlebot_address(rng) in ranges.crawlers["googlebot"]


def test_browser_header_sets_pass_client_sanity_and_library_ones_do_not() -> None:
    sanity = client_sanity(Policy())
    rng = random.Random(4)

    def evidence(headers: dict[str, str]) -> list[str]:
        pairs = [("host", "127.0.0.1:8000"), *((k.lower(), v) for k, v in headers.items() if v)]
        facts = RequestFacts(
            now=0.0, ip="73.1.2.3", path="/users/1", user_agent=headers["User-Agent"], headers=tuple(pairs)
        )
        return [e.detector for e in sanity.check(facts)]

    for _ in range(30):
        browser = pick_browser(rng)
        assert evidence(browser.page("http://127.0.0.1:8000/feed")) == [], browser
        assert evidence(browser.asset("image", "http://127.0.0.1:8000/feed")) == [], browser
        assert evidence(browser.form_post("http://127.0.0.1:8000/login", "http://127.0.0.1:8000")) == []
    spoofed = library_headers(chrome().user_agent)
    assert "client.inconsistent_browser" in evidence(spoofed)
    assert "client.bot_ua" in evidence(library_headers())


def test_search_terms_run_aa_to_zzz() -> None:
    terms = list(search_terms())
    assert terms[:3] == ["aa", "ab", "ac"] and terms[675] == "zz" and terms[676] == "aaa"
    assert len(terms) == 26**2 + 26**3
