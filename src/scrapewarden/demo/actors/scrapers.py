"""Scrapers of personal records, from the crude to the careful (issue 3's list, 1-7).

Each one is bounded by its request cap and the deadline, never exceeds ``max_rate`` requests per
second, and keeps going after refusals the way real scrapers do (:class:`Persistence`): it
retries an item a few times, waits as long as a 429/503 ``Retry-After`` asks (up to a cap) or
backs off on its own, moves on to the next item, and gives up only after many refusals in a
row. Addresses are simulated in ``X-Forwarded-For``: hosting ranges, except the
residential-proxy scraper.
"""

from __future__ import annotations

import itertools
import random
import string
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from .accounts import DEMO_PASSWORD, SESSION_COOKIE, account_handle, log_in, sign_up
from .addresses import hosting_address, hosting_slash24, residential_addresses
from .base import ActorResult, Kind, Target
from .browsers import CHROME_UA, PYTHON_REQUESTS_UA, chrome, library_headers
from .client import DEFAULT_MAX_RATE, Client, Reply, pause
from .pages import is_profile, links_in

DEFAULT_MAX_REQUESTS = 20_000
SIGN_UP_TRIES = 3
PROFILE_PATH = "/users/{id}"


@dataclass(frozen=True)
class Persistence:
    """How a scraper keeps at it after refusals (403, 429, 503, or no answer)."""

    retries: int = 3
    """Extra attempts at one item after a refusal."""
    backoff_s: float = 0.5
    """First wait after a refusal that names no Retry-After; doubles with each retry."""
    max_wait_s: float = 5.0
    """Cap on any single wait, Retry-After included (scrapers do not wait an hour)."""
    give_up_after: int = 50
    """Consecutive refusals after which the scraper stops for good."""


class _Stubbornness:
    """Fetches items with retries and back-off; remembers the run of refusals."""

    def __init__(self, client: Client, persistence: Persistence, deadline: float) -> None:
        self.client = client
        self.persistence = persistence
        self.deadline = deadline
        self.in_a_row = 0

    @property
    def gave_up(self) -> bool:
        return self.in_a_row >= self.persistence.give_up_after

    async def get(self, path: str, headers: dict[str, str], address: Callable[[], str]) -> Reply | None:
        """The item's last reply; None when out of budget or time, or the scraper gave up."""
        rules = self.persistence
        for attempt in range(rules.retries + 1):
            if self.gave_up:
                return None
            reply = await self.client.get(path, headers, self.deadline, address=address())
            if reply is None:
                return None
            if not reply.refused:
                self.in_a_row = 0
                return reply
            self.in_a_row += 1
            if self.gave_up:
                return None
            if attempt == rules.retries:
                return reply
            wait = rules.backoff_s * 2**attempt
            if reply.status in (429, 503):
                wait = reply.retry_after(wait)
            if not await pause(min(wait, rules.max_wait_s), self.deadline):
                return None
        return None


@dataclass
class Scraper:
    """What every scraper has: a name, a request cap, a pace limit and its persistence."""

    name: str
    max_requests: int = DEFAULT_MAX_REQUESTS
    max_rate: float = DEFAULT_MAX_RATE
    persistence: Persistence = field(default_factory=Persistence)
    kind: ClassVar[Kind] = "scraper"

    def _client(
        self,
        target: Target,
        result: ActorResult,
        address: str,
        *,
        rate: float | None = None,
        cookies: bool = True,
    ) -> Client:
        return Client(
            target,
            result,
            address=address,
            max_requests=self.max_requests,
            max_rate=min(rate or self.max_rate, self.max_rate),
            connections=1,
            cookies=cookies,
        )


def _ids_in_random_order(target: Target, rng: random.Random) -> list[int]:
    ids = list(range(1, target.people + 1))
    rng.shuffle(ids)  # a scraper picks each id once, in an order that hides the sweep
    return ids


@dataclass
class SequentialScraper(Scraper):
    """Walks ``/users/1``, ``/users/2``... from one address with an HTTP library's headers.

    ``user_agent`` replaces the library's own (a spoofed browser user agent keeps the
    library's other headers: no client hints, no Sec-Fetch-*, no Accept-Language).
    """

    user_agent: str = PYTHON_REQUESTS_UA
    address: str | None = None
    path: str = PROFILE_PATH
    start: int = 1

    async def run(self, target: Target, deadline: float, rng: random.Random) -> ActorResult:
        result = ActorResult(self.name, "scraper")
        address = self.address or hosting_address(rng)
        headers = library_headers(self.user_agent)
        async with self._client(target, result, address) as client:
            fetch = _Stubbornness(client, self.persistence, deadline)
            for person in range(self.start, target.people + 1):
                if await fetch.get(self.path.format(id=person), headers, lambda: address) is None:
                    break
        return result


@dataclass
class Slash24Scraper(Scraper):
    """Sequential ids, one request per address round-robin over the 256 addresses of a /24."""

    addresses: Sequence[str] = ()
    """Defaults to a /24 wholly inside a shipped hosting network."""
    path: str = PROFILE_PATH

    async def run(self, target: Target, deadline: float, rng: random.Random) -> ActorResult:
        result = ActorResult(self.name, "scraper")
        pool = list(self.addresses) or hosting_slash24(rng)
        turn = itertools.cycle(pool)
        headers = library_headers()
        async with self._client(target, result, pool[0]) as client:
            fetch = _Stubbornness(client, self.persistence, deadline)
            for person in range(1, target.people + 1):
                if await fetch.get(self.path.format(id=person), headers, lambda: next(turn)) is None:
                    break
        return result


@dataclass
class ResidentialProxyScraper(Scraper):
    """Random ids through a residential proxy pool: 1-3 requests per exit address.

    The header set is a browser's, copied once and sent unchanged from every exit (the proxy
    changes, the scraper's code does not). No cookies are kept: they would tie the exits
    together.
    """

    pool_size: int = 1000
    per_address: tuple[int, int] = (1, 3)
    addresses: Sequence[str] = ()
    """Defaults to ``pool_size`` unrelated residential addresses (one per /24)."""
    path: str = PROFILE_PATH

    async def run(self, target: Target, deadline: float, rng: random.Random) -> ActorResult:
        result = ActorResult(self.name, "scraper")
        pool = list(self.addresses) or residential_addresses(self.pool_size, rng)
        exits = _Rotation(pool, self.per_address, rng)
        headers = chrome().page(None)
        async with self._client(target, result, pool[0], cookies=False) as client:
            fetch = _Stubbornness(client, self.persistence, deadline)
            for person in _ids_in_random_order(target, rng):
                if await fetch.get(self.path.format(id=person), headers, exits.next) is None:
                    break
        return result


class _Rotation:
    """Hands out exit addresses, each for a random 1..n requests, reshuffling after a lap."""

    def __init__(self, pool: list[str], uses: tuple[int, int], rng: random.Random) -> None:
        self.pool = pool
        self.uses = uses
        self.rng = rng
        self.order: Iterator[str] = iter(())
        self.current = ""
        self.left = 0

    def next(self) -> str:
        if self.left <= 0:
            try:
                self.current = next(self.order)
            except StopIteration:
                lap = list(self.pool)
                self.rng.shuffle(lap)
                self.order = iter(lap)
                self.current = next(self.order)
            self.left = self.rng.randint(*self.uses)
        self.left -= 1
        return self.current


_HANDLE_WORDS = ("sun", "blue", "quick", "north", "pixel", "river", "echo", "nova", "maple", "delta")
_NAMES = ("Alex Smith", "Sam Lee", "Jo Brown", "Chris Young", "Pat Green", "Kim Park", "Max Weber")


@dataclass
class NewAccountScraper(Scraper):
    """Signs up, logs in, then looks people up at ``rate`` per second (random ids).

    After a run: ``handle`` is the account it made, ``has_session`` whether the site gave it a
    session cookie.
    """

    rate: float = 3.0
    address: str | None = None
    """Defaults to a hosting address (a fresh cloud machine per account)."""
    path: str = PROFILE_PATH
    handle: str = ""
    has_session: bool = False

    async def run(self, target: Target, deadline: float, rng: random.Random) -> ActorResult:
        result = ActorResult(self.name, "scraper")
        address = self.address or hosting_address(rng)
        password = "".join(rng.choices(string.ascii_letters + string.digits, k=14))
        browser = chrome()
        async with self._client(target, result, address, rate=self.rate) as client:
            for attempt in range(SIGN_UP_TRIES):
                if attempt or not self.handle:
                    self.handle = (
                        f"{rng.choice(_HANDLE_WORDS)}{rng.choice(_HANDLE_WORDS)}{rng.randrange(10**6)}"
                    )
                made = await sign_up(client, browser, self.handle, rng.choice(_NAMES), password, deadline)
                if made is None:
                    return result
                if made.status != 400:  # 400: the handle is taken, pick another
                    break
            if await log_in(client, browser, self.handle, deadline, password=password) is None:
                return result
            self.has_session = client.cookie(SESSION_COOKIE) is not None
            fetch = _Stubbornness(client, self.persistence, deadline)
            headers = browser.page(None)
            for person in _ids_in_random_order(target, rng):
                if await fetch.get(self.path.format(id=person), headers, lambda: address) is None:
                    break
        return result


@dataclass
class AgedAccountScraper(Scraper):
    """Logs in as an existing, long-standing person and sweeps slowly all day long.

    One lookup every ``interval_s × time_scale`` seconds, random ids, a browser's headers:
    under any per-minute limit, but it never stops.
    """

    account: int | str | None = None
    """An aged account: index into ``Target.handles`` or a handle; random by default."""
    interval_s: float = 2.0
    time_scale: float = 1.0
    address: str | None = None
    path: str = PROFILE_PATH
    has_session: bool = False

    async def run(self, target: Target, deadline: float, rng: random.Random) -> ActorResult:
        result = ActorResult(self.name, "scraper")
        address = self.address or hosting_address(rng)
        account = self.account if self.account is not None else rng.randrange(max(1, len(target.handles)))
        handle = account_handle(target, account)
        browser = chrome()
        rate = 1.0 / max(self.interval_s * self.time_scale, 1e-3)
        async with self._client(target, result, address, rate=rate) as client:
            if (
                handle is None
                or await log_in(client, browser, handle, deadline, password=DEMO_PASSWORD) is None
            ):
                return result
            self.has_session = client.cookie(SESSION_COOKIE) is not None
            fetch = _Stubbornness(client, self.persistence, deadline)
            headers = browser.page(None)
            for person_id in _ids_in_random_order(target, rng):
                if await fetch.get(self.path.format(id=person_id), headers, lambda: address) is None:
                    break
        return result


def search_terms(three_letters: bool = True) -> Iterator[str]:
    """``aa``, ``ab``... ``zz``, then ``aaa``... ``zzz``."""
    letters = string.ascii_lowercase
    yield from ("".join(pair) for pair in itertools.product(letters, repeat=2))
    if three_letters:
        yield from ("".join(triple) for triple in itertools.product(letters, repeat=3))


@dataclass
class SearchScraper(Scraper):
    """Enumerates the search API with every two-letter term, then three-letter ones.

    ``cards`` collects the profile links of the results (what it would fetch next).
    """

    address: str | None = None
    three_letters: bool = True
    cards: set[str] = field(default_factory=set)

    async def run(self, target: Target, deadline: float, rng: random.Random) -> ActorResult:
        result = ActorResult(self.name, "scraper")
        address = self.address or hosting_address(rng)
        headers = library_headers()
        async with self._client(target, result, address) as client:
            fetch = _Stubbornness(client, self.persistence, deadline)
            for term in search_terms(self.three_letters):
                reply = await fetch.get(f"/search?q={term}", headers, lambda: address)
                if reply is None:
                    break
                if reply.status == 200:
                    for link in links_in(reply.body):
                        path = client.same_site_path(link.href)
                        if path is not None and is_profile(path):
                            self.cards.add(path)
        return result


def scrapers_mix(
    rng: random.Random,
    *,
    time_scale: float = 1.0,
    max_rate: float = DEFAULT_MAX_RATE,
    max_requests: int = DEFAULT_MAX_REQUESTS,
    new_accounts: int = 10,
    persistence: Persistence | None = None,
) -> list[Scraper]:
    """One of each scraper (and ``new_accounts`` new-account scrapers), addresses drawn now."""
    rules = persistence or Persistence()
    hosts: set[str] = set()

    def host() -> str:
        while True:
            address = hosting_address(rng)
            if address not in hosts:
                hosts.add(address)
                return address

    def limits(scraper: Scraper) -> Scraper:
        scraper.max_rate, scraper.max_requests, scraper.persistence = max_rate, max_requests, rules
        return scraper

    scrapers: list[Scraper] = [
        SequentialScraper("scraper 1: sequential ids, python-requests", address=host()),
        SequentialScraper("scraper 2: sequential ids, spoofed Chrome", user_agent=CHROME_UA, address=host()),
        Slash24Scraper("scraper 3: sequential ids over one /24", addresses=hosting_slash24(rng)),
        ResidentialProxyScraper(
            "scraper 4: residential proxies, 1,000 addresses", addresses=residential_addresses(1000, rng)
        ),
        *(NewAccountScraper(f"new account {i}", address=host()) for i in range(1, new_accounts + 1)),
        AgedAccountScraper("scraper 6: aged account, slow and low", time_scale=time_scale, address=host()),
        SearchScraper("scraper 7: search enumeration", address=host()),
    ]
    return [limits(scraper) for scraper in scrapers]
