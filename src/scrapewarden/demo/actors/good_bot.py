"""A search-engine crawler that behaves: Googlebot from Google's own address range.

It reads robots.txt first and never fetches a path robots.txt disallows for it (nor follows
``rel=nofollow`` links), takes its URLs from the sitemap(s) and from links on the pages it
fetched, and keeps a polite pace. If robots.txt answers with a server error it crawls nothing,
as RFC 9309 asks.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass
from typing import ClassVar

from .addresses import googlebot_address
from .base import ActorResult, Kind, Target
from .client import Client, Reply
from .pages import links_in, sitemap_locations
from .robots import Robots, parse_robots

GOOGLEBOT_UA = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
GOOGLEBOT_HEADERS = {
    "Connection": "keep-alive",
    "From": "googlebot(at)googlebot.com",
    "User-Agent": GOOGLEBOT_UA,
    "Accept": "text/html,application/xhtml+xml,application/signed-exchange;v=b3,application/xml;q=0.9,"
    "*/*;q=0.8",
    "Accept-Encoding": "gzip, deflate, br",
}
MAX_SITEMAPS = 20


@dataclass
class GoodBot:
    """Googlebot crawling at ``rate`` requests per second, at most ``max_requests``."""

    name: str = "good bot (Googlebot)"
    rate: float = 3.0
    max_requests: int = 5000
    address: str | None = None
    """Defaults to an address drawn from the shipped Googlebot ranges."""
    kind: ClassVar[Kind] = "good_bot"

    async def run(self, target: Target, deadline: float, rng: random.Random) -> ActorResult:
        result = ActorResult(self.name, "good_bot")
        address = self.address or googlebot_address(rng)
        async with Client(
            target, result, address=address, max_requests=self.max_requests, max_rate=self.rate, connections=1
        ) as client:
            await _Crawl(client, deadline).run()
        return result


class _Crawl:
    def __init__(self, client: Client, deadline: float) -> None:
        self.client = client
        self.deadline = deadline
        self.robots = Robots()
        # Two frontiers, taken in turn: what the sitemap lists and what pages link to.
        self.listed: deque[str] = deque()
        self.linked: deque[str] = deque()
        self.seen: set[str] = set()

    async def run(self) -> None:
        reply = await self._get("/robots.txt")
        if reply is None:
            return
        if reply.status == 200:
            self.robots = parse_robots(reply.body, "googlebot")
        elif reply.status >= 500 or reply.status in (0, 429):
            return  # unreachable robots.txt: crawl nothing
        # (4xx: no robots.txt, everything allowed.)
        sitemaps = [p for p in map(self.client.same_site_path, self.robots.sitemaps) if p] or ["/sitemap.xml"]
        pending = deque(sitemaps)
        read = 0
        while pending and read < MAX_SITEMAPS:
            path = pending.popleft()
            if not self.robots.allowed(path):
                continue
            reply = await self._get(path)
            read += 1
            if reply is None:
                return
            if reply.status != 200:
                continue
            nested = "<sitemapindex" in reply.body
            for url in sitemap_locations(reply.body):
                found = self.client.same_site_path(url)
                if found is None:
                    continue
                if nested:
                    pending.append(found)
                else:
                    self._enqueue(found, listed=True)
        self._enqueue("/")
        turn = 0
        while self.listed or self.linked:
            turn += 1
            first, second = (self.listed, self.linked) if turn % 2 else (self.linked, self.listed)
            path = (first or second).popleft()
            reply = await self._get(path)
            if reply is None:
                return
            if reply.status == 200 and "html" in reply.headers.get("content-type", "html"):
                for link in links_in(reply.body):
                    found = self.client.same_site_path(link.href)
                    if found is not None and not link.nofollow:
                        self._enqueue(found)

    def _enqueue(self, path: str, *, listed: bool = False) -> None:
        if path not in self.seen and self.robots.allowed(path):
            self.seen.add(path)
            (self.listed if listed else self.linked).append(path)

    async def _get(self, path: str) -> Reply | None:
        # Redirects are not followed blindly: the target may be disallowed, so it is queued.
        reply = await self.client.request(
            "GET", path, GOOGLEBOT_HEADERS, self.deadline, follow_redirects=False
        )
        if reply is not None and 300 <= reply.status < 400:
            location = self.client.same_site_path(reply.headers.get("location", ""))
            if location is not None:
                self._enqueue(location)
        return reply
