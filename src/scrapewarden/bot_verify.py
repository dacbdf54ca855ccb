"""Is a request that claims to be Googlebot really Googlebot?

Two answers, the cheap one first:

1. Published address ranges (``data/lord-alfred-ipranges``): an address inside the crawler's
   own list is that crawler. Answered at once.
2. Forward-confirmed reverse DNS (FCrDNS), the method the search engines document: the
   address's PTR name must end in the crawler's domain (``crawl-66-249-66-1.googlebot.com``)
   *and* that name must resolve back to the same address. A PTR record alone proves nothing:
   whoever controls the address's reverse zone can write any name into it.

DNS is slow and must never run on the request path, so :meth:`BotVerifier.verdict` answers
from a cache and, on a miss, queues the look-up for a small pool of background threads and
returns None ("not known yet"); the engine then treats the request like any other. The queue
is bounded, so a flood of fake crawler requests from many addresses cannot pile up work.

The DNS itself sits behind :class:`Resolver`, so tests use :class:`StaticResolver`.
"""

from __future__ import annotations

import ipaddress
import queue
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from typing import Protocol

from .core.detectors.reputation import IpRanges

CRAWLER_DOMAINS: dict[str, tuple[str, ...]] = {
    "googlebot": ("googlebot.com", "google.com"),
    "bingbot": ("search.msn.com",),
    "applebot": ("applebot.apple.com",),
    "duckduckbot": ("duckduckgo.com",),
    "duckassistbot": ("duckduckgo.com",),
    "yahoo": ("crawl.yahoo.net",),
    "yandex": ("yandex.ru", "yandex.net", "yandex.com"),
    "baidu": ("baidu.com", "baidu.jp"),
    "petalbot": ("petalsearch.com", "aspiegel.com"),
    "seznambot": ("seznam.cz",),
}
"""Reverse-DNS domains each crawler's operator documents for its crawler hosts.

Deliberately absent: ``googleusercontent.com`` (Google Cloud customers' machines carry it too),
and OpenAI and Perplexity, which publish address ranges only.
"""


class Resolver(Protocol):
    """DNS as the verifier needs it. Implementations may raise ``OSError`` on failure."""

    def reverse(self, ip: str) -> list[str]:
        """Host names from the address's PTR record(s)."""

    def forward(self, hostname: str) -> list[str]:
        """Addresses (IPv4 and IPv6) the host name resolves to."""


class SystemResolver:
    """The operating system's resolver (``socket``). Blocking: use only off the request path."""

    def reverse(self, ip: str) -> list[str]:
        name, aliases, _ = socket.gethostbyaddr(ip)
        return [name, *aliases]

    def forward(self, hostname: str) -> list[str]:
        return sorted(
            {str(info[4][0]) for info in socket.getaddrinfo(hostname, None, proto=socket.IPPROTO_TCP)}
        )


class StaticResolver:
    """A fixed table, for tests and air-gapped setups.

    ``table`` maps an address to its PTR names and a host name to its addresses, e.g.
    ``{"66.249.66.1": ["crawl-66-249-66-1.googlebot.com"],
    "crawl-66-249-66-1.googlebot.com": ["66.249.66.1"]}``. Unknown keys resolve to nothing.
    """

    def __init__(self, table: Mapping[str, Iterable[str]]) -> None:
        self.table = {key.lower().rstrip("."): list(values) for key, values in table.items()}
        self.calls = 0
        """How many look-ups were made: lets tests see that the cache and ranges spare DNS."""

    def reverse(self, ip: str) -> list[str]:
        self.calls += 1
        return list(self.table.get(ip, []))

    def forward(self, hostname: str) -> list[str]:
        self.calls += 1
        return list(self.table.get(hostname.lower().rstrip("."), []))


def _same_address(a: str, b: str) -> bool:
    try:
        return ipaddress.ip_address(a.split("%", 1)[0]) == ipaddress.ip_address(b.split("%", 1)[0])
    except ValueError:
        return False


def _in_domains(hostname: str, domains: Iterable[str]) -> bool:
    name = hostname.lower().rstrip(".")
    # A dot boundary: "googlebot.com.evil.net" and "evilgooglebot.com" do not count.
    return any(name == d or name.endswith("." + d) for d in domains)


def fcrdns(resolver: Resolver, ip: str, domains: Iterable[str]) -> bool:
    """Forward-confirmed reverse DNS: a PTR name in ``domains`` that resolves back to ``ip``."""
    domains = tuple(domains)
    for hostname in resolver.reverse(ip):
        if _in_domains(hostname, domains) and any(_same_address(ip, a) for a in resolver.forward(hostname)):
            return True
    return False


class BotVerifier:
    """Cached crawler verification; implements the engine's ``BotVerdicts`` protocol.

    ``verdict`` never blocks and never raises. Results are kept ``ttl`` seconds (``failure_ttl``
    when DNS failed, so a resolver hiccup is retried soon), at most ``max_entries`` of them.
    """

    def __init__(
        self,
        resolver: Resolver,
        ranges: IpRanges | None = None,
        *,
        domains: Mapping[str, Iterable[str]] | None = None,
        workers: int = 2,
        max_queue: int = 256,
        ttl: float = 86400.0,
        failure_ttl: float = 300.0,
        max_entries: int = 65536,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.resolver = resolver
        self.ranges = ranges
        self.domains = {
            bot: tuple(d) for bot, d in (domains if domains is not None else CRAWLER_DOMAINS).items()
        }
        self.ttl, self.failure_ttl, self.max_entries = ttl, failure_ttl, max_entries
        self.clock = clock
        self._cache: OrderedDict[tuple[str, str], tuple[bool, float]] = OrderedDict()
        self._pending: set[tuple[str, str]] = set()
        self._lock = threading.Lock()
        self._queue: queue.Queue[tuple[str, str] | None] = queue.Queue(max_queue)
        self._workers = max(1, workers)
        self._threads: list[threading.Thread] = []
        self.dropped = 0
        """Look-ups not queued because the queue was full (they are retried on a later request)."""

    # -- the protocol ------------------------------------------------------------------------

    def verdict(self, ip: str, claimed: str) -> bool | None:
        """True: really that crawler; False: not; None: unknown yet (look-up queued) or unknowable."""
        crawler_range = self.ranges.crawlers.get(claimed) if self.ranges is not None else None
        if crawler_range is not None and ip in crawler_range:
            return True
        if claimed not in self.domains:
            # Only published ranges can vouch for this crawler, and the address is not in them.
            return False if crawler_range is not None else None
        key = (ip, claimed)
        now = self.clock()
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                if hit[1] > now:
                    return hit[0]
                del self._cache[key]
            if key in self._pending:
                return None
            try:
                self._queue.put_nowait(key)
            except queue.Full:
                self.dropped += 1
                return None
            self._pending.add(key)
            self._start_workers()
        return None

    # -- running look-ups --------------------------------------------------------------------

    def verify_now(self, ip: str, claimed: str) -> bool:
        """Run the check in the calling thread and cache it (CLI, tests). Blocks on DNS."""
        domains = self.domains.get(claimed, ())
        ok, ttl = False, self.failure_ttl
        try:
            ok = bool(domains) and fcrdns(self.resolver, ip, domains)
            ttl = self.ttl
        except (OSError, UnicodeError, ValueError):
            pass  # no answer is not a yes; cached briefly so a flaky resolver gets another go
        with self._lock:
            self._cache[(ip, claimed)] = (ok, self.clock() + ttl)
            self._cache.move_to_end((ip, claimed))
            while len(self._cache) > self.max_entries:
                self._cache.popitem(last=False)
        return ok

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Wait until queued look-ups are done (tests, shutdown). True if the queue drained."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if not self._pending:
                    return True
            time.sleep(0.005)
        return False

    def close(self) -> None:
        """Stop the worker threads (queued look-ups still run first)."""
        with self._lock:
            threads, self._threads = self._threads, []
        for _ in threads:
            self._queue.put(None)
        for thread in threads:
            thread.join(timeout=5.0)

    def _start_workers(self) -> None:
        # Called with the lock held. Threads start lazily: most sites see a crawler soon, but
        # importing or configuring the verifier should not spawn threads.
        while len(self._threads) < self._workers:
            thread = threading.Thread(target=self._work, name="scrapewarden-botverify", daemon=True)
            thread.start()
            self._threads.append(thread)

    def _work(self) -> None:
        while True:
            key = self._queue.get()
            if key is None:
                return
            try:
                self.verify_now(*key)
            except Exception:  # a bug in a resolver must not kill the worker
                with self._lock:
                    self._cache[key] = (False, self.clock() + self.failure_ttl)
            finally:
                with self._lock:
                    self._pending.discard(key)
