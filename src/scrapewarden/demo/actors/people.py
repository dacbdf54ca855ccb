"""People browsing the demo site, modelled over plain HTTP for volume.

A person lands on the home page or the feed, opens friends' profiles from the links in front of
them, now and then searches a first name and clicks a result, looks at someone's followers,
follows other links, and thinks between clicks (log-normal, scaled by ``time_scale`` so a short
demo still sees many clicks). Their browser loads each page's stylesheets, scripts and images
once per session, sends one consistent header set with a Referer, and keeps cookies. Returning
visitors have the site's stylesheets and scripts cached already. Some people log in first.
Hidden links are never clicked: people cannot see them.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar
from urllib.parse import quote

from .accounts import SESSION_COOKIE, account_handle, log_in
from .addresses import residential_address
from .base import ActorResult, Kind, Target
from .browsers import AssetKind, Browser, pick_browser
from .client import DEFAULT_MAX_RATE, Client, Reply, pause
from .pages import assets_in, is_followers, is_profile, links_in

THINK_MEDIAN_S = 8.0
"""Median pause between two clicks of a real person, before ``time_scale``."""
THINK_SIGMA = 1.0
"""Spread of the log-normal think time: most pauses 3-20 s, a few a minute or more."""
MAX_IMAGES_PER_PAGE = 12
"""Images below the fold are lazy-loaded; a glance at a page loads about this many."""
BROWSER_CONNECTIONS = 6
"""Parallel connections per host, as browsers open over HTTP/1.1."""
_NOT_CLICKED = ("/logout", "/login", "/signup", "/.sw/", "/robots.txt", "/sitemap.xml")


@dataclass
class Person:
    """One person's browsing session (``clicks`` page views) from address ``ip``.

    ``logged_in_as``: the existing (aged) account this person logs in to first, with
    ``demo-password``: an index into ``Target.handles`` or a handle; None to browse logged out.
    """

    name: str
    ip: str
    browser: Browser
    logged_in_as: int | str | None = None
    clicks: int = 20
    time_scale: float = 1.0
    returning: bool = False
    """Has the site's stylesheets and scripts cached from an earlier visit."""
    arrival_s: float = 0.0
    """Seconds after ``run`` starts at which this person turns up."""
    think_median_s: float = THINK_MEDIAN_S
    think_sigma: float = THINK_SIGMA
    max_rate: float = DEFAULT_MAX_RATE
    kind: ClassVar[Kind] = "human"

    def think_time(self, rng: random.Random) -> float:
        return rng.lognormvariate(math.log(self.think_median_s), self.think_sigma) * self.time_scale

    async def run(self, target: Target, deadline: float, rng: random.Random) -> ActorResult:
        result = ActorResult(self.name, "human", sessions=1)
        if self.arrival_s > 0 and not await pause(self.arrival_s, deadline):
            result.sessions = 0  # never turned up before the end of the run
            return result
        async with Client(
            target, result, address=self.ip, max_rate=self.max_rate, connections=BROWSER_CONNECTIONS
        ) as client:
            await _Visit(self, client, target, rng, deadline).browse()
        if client.sent == 0:
            result.sessions = 0
        return result


class _Visit:
    """The state of one browsing session: where the person is, what the browser has cached."""

    def __init__(
        self, person: Person, client: Client, target: Target, rng: random.Random, deadline: float
    ) -> None:
        self.person = person
        self.browser = person.browser
        self.client = client
        self.target = target
        self.rng = rng
        self.deadline = deadline
        self.cached: set[str] = set()
        self.page: Reply | None = None
        self.logged_in = False

    async def browse(self) -> None:
        clicks = self.person.clicks
        if self.person.logged_in_as is not None:
            handle = account_handle(self.target, self.person.logged_in_as)
            if handle is not None:
                landed = await log_in(self.client, self.browser, handle, self.deadline)
                clicks -= 2  # the login page and the form submission
                self.logged_in = self.client.cookie(SESSION_COOKIE) is not None
                if landed is not None and landed.status == 200:
                    await self._load_assets(landed)
                    self.page = landed
        if self.page is None:
            landing = "/feed" if self.logged_in or self.rng.random() < 0.5 else "/"
            if not await self._open(landing, referer=None):
                return
            clicks -= 1
        while clicks > 0 and await pause(self.person.think_time(self.rng), self.deadline):
            if not await self._open(self._next_path(), referer=self.page.path if self.page else None):
                return
            clicks -= 1

    async def _open(self, path: str, referer: str | None) -> bool:
        """Navigate to ``path`` and load its assets; False when time or budget ran out."""
        headers = self.browser.page(self.client.url(referer) if referer else None)
        reply = await self.client.get(path, headers, self.deadline)
        if reply is None:
            return False
        if reply.status != 0:
            await self._load_assets(reply)
        if reply.status == 200:
            # Refusal pages are a dead end: the person goes on from the page they were on.
            self.page = reply
        return True

    async def _load_assets(self, page: Reply) -> None:
        referer = self.client.url(page.path)
        wanted: list[tuple[AssetKind, str]] = []
        images = 0
        for kind, url in assets_in(page.body):
            path = self.client.same_site_path(url)
            if path is None or path in self.cached:
                continue
            if self.person.returning and kind != "image":
                continue  # in the browser's cache since an earlier visit
            if kind == "image":
                images += 1
                if images > MAX_IMAGES_PER_PAGE:
                    continue
            self.cached.add(path)
            wanted.append((kind, path))
        await asyncio.gather(
            *(
                self.client.get(path, self.browser.asset(kind, referer), self.deadline)
                for kind, path in wanted
            )
        )

    def _next_path(self) -> str:
        """Where the person clicks next, from what the current page shows."""
        home = "/feed" if self.logged_in else "/"
        if self.page is None:
            return home
        links = []
        for link in links_in(self.page.body):
            path = self.client.same_site_path(link.href)
            if link.hidden or path is None or path.startswith(_NOT_CLICKED) or path == self.page.path:
                continue
            links.append(path)
        profiles = [p for p in links if is_profile(p)]
        followers = [p for p in links if is_followers(p)]
        rng = self.rng
        if self.page.path.startswith("/search") and profiles and rng.random() < 0.85:
            return rng.choice(profiles[:10])  # a result near the top
        choice = rng.random()
        if followers and is_profile(self.page.path) and choice < 0.15:
            return followers[0]
        if self.target.first_names and choice < 0.27:
            return "/search?q=" + quote(rng.choice(self.target.first_names))
        if profiles and choice < 0.80:
            return rng.choice(profiles)
        if links and choice < 0.92:
            return rng.choice(links)
        return home


def people_mix(
    n: int,
    rng: random.Random,
    *,
    shared_addresses: int = 2,
    per_shared_address: int = 4,
    logged_in_share: float = 0.3,
    returning_share: float = 0.5,
    accounts: int | Sequence[int | str] = 200,
    clicks: tuple[int, int] = (5, 40),
    time_scale: float = 1.0,
    arrivals_over_s: float = 0.0,
    max_rate: float = DEFAULT_MAX_RATE,
) -> list[Person]:
    """``n`` people with residential addresses, some sharing one (office or carrier NAT).

    ``shared_addresses`` addresses are each used by up to ``per_shared_address`` people; every
    other person has an address of their own. Logged-in people use distinct existing accounts
    drawn from ``accounts``: handles, or indices into ``Target.handles`` (an int ``k`` means
    indices 0..k-1). Arrivals are spread uniformly over the first ``arrivals_over_s`` seconds
    (0: everyone starts at once).
    """
    used_slash24: set[str] = set()
    nat = [residential_address(rng, avoid_slash24=used_slash24) for _ in range(shared_addresses)]
    behind_nat = min(n, shared_addresses * per_shared_address)
    addresses = [nat[i % len(nat)] for i in range(behind_nat)] if nat else []
    addresses += [residential_address(rng, avoid_slash24=used_slash24) for _ in range(n - len(addresses))]
    rng.shuffle(addresses)
    pool: list[int | str] = list(range(accounts)) if isinstance(accounts, int) else list(accounts)
    rng.shuffle(pool)
    people = []
    for i, address in enumerate(addresses, start=1):
        account = pool.pop() if pool and rng.random() < logged_in_share else None
        people.append(
            Person(
                name=f"person {i}",
                ip=address,
                browser=pick_browser(rng),
                logged_in_as=account,
                clicks=rng.randint(*clicks),
                time_scale=time_scale,
                returning=rng.random() < returning_share,
                arrival_s=rng.uniform(0.0, arrivals_over_s) if arrivals_over_s > 0 else 0.0,
                max_rate=max_rate,
            )
        )
    return people
