"""One simulated client's HTTP plumbing: an aiohttp session, a pace limit, a request cap.

Every response is scored into the actor's :class:`ActorResult` (redirect hops included, each is
a request the site answered). Transport failures are counted as ``errors``, not as requests.
Nothing here ever waits past the actor's deadline by more than :data:`DEADLINE_SLACK_S`.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from types import TracebackType
from urllib.parse import urlencode, urljoin, urlsplit

import aiohttp
from yarl import URL

from .base import ActorResult, Target

DEFAULT_MAX_RATE = 50.0
"""Requests per second no actor exceeds, so the whole suite fits a small machine."""
REQUEST_TIMEOUT_S = 10.0
DEADLINE_SLACK_S = 1.0
"""A request started just before the deadline may run this much past it, no more."""
MAX_REDIRECTS = 5
_REDIRECTS = (301, 302, 303, 307, 308)
_FORM_ONLY = ("origin", "cache-control", "content-type", "content-length")


@dataclass
class Reply:
    """One answered request: final status, body text, lower-cased headers and final path."""

    status: int
    body: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def refused(self) -> bool:
        """A refusal a scraper would retry or back off from (or no answer at all)."""
        return self.status in (0, 403, 429, 503)

    def retry_after(self, default: float) -> float:
        """Seconds the site asked to wait (``Retry-After`` in seconds), else ``default``."""
        value = self.headers.get("retry-after", "")
        try:
            return max(0.0, float(value))
        except ValueError:
            return default


async def pause(seconds: float, deadline: float) -> bool:
    """Sleep ``seconds`` but never past ``deadline``; True while time is left."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        return False
    await asyncio.sleep(max(0.0, min(seconds, remaining)))
    return time.monotonic() < deadline


class Pacer:
    """Spaces requests at least ``1 / rate`` seconds apart, concurrent callers included."""

    def __init__(self, rate: float) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.interval = 1.0 / rate
        self._next = 0.0

    async def wait(self, deadline: float) -> bool:
        """Wait for this request's slot; False when the slot would fall past ``deadline``."""
        now = time.monotonic()
        slot = max(now, self._next)
        if slot >= deadline:
            return False
        self._next = slot + self.interval
        if slot > now:
            await asyncio.sleep(slot - now)
        return True


class Client:
    """One simulated client: its own cookie jar and connection pool, pace and request cap.

    ``address`` is the public address the client claims in ``X-Forwarded-For``; a call may name
    another one (scrapers that rotate addresses through proxies).
    """

    def __init__(
        self,
        target: Target,
        result: ActorResult,
        *,
        address: str,
        max_requests: int | None = None,
        max_rate: float = DEFAULT_MAX_RATE,
        connections: int = 4,
        cookies: bool = True,
    ) -> None:
        self.target = target
        self.result = result
        self.address = address
        self.max_requests = max_requests
        self.pacer = Pacer(max_rate)
        self.sent = 0
        """Requests started, redirect hops included (the cap counts these)."""
        self._connections = connections
        self._cookies = cookies
        self._session: aiohttp.ClientSession | None = None
        # unsafe=True: the demo site lives at 127.0.0.1, and aiohttp's default jar refuses
        # cookies from bare IP addresses.
        self._jar = aiohttp.CookieJar(unsafe=True)
        origin = urlsplit(target.base_url)
        self.origin = f"{origin.scheme}://{origin.netloc}"

    async def __aenter__(self) -> Client:
        # The session itself keeps no cookies: this client's own jar does, so that the Cookie
        # header can sit where the browser puts it (aiohttp would append it last).
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self._connections),
            cookie_jar=aiohttp.DummyCookieJar(),
            timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S),
        )
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def cookie(self, name: str) -> str | None:
        """The value of a cookie the site set for this client, if any."""
        for morsel in self._jar:
            if morsel.key == name:
                return morsel.value
        return None

    def out_of_budget(self, deadline: float) -> bool:
        capped = self.max_requests is not None and self.sent >= self.max_requests
        return capped or time.monotonic() >= deadline

    def url(self, path: str) -> str:
        return urljoin(self.target.base_url, path)

    def same_site_path(self, url: str) -> str | None:
        """``url`` as a path with query if it is on the target site, else None."""
        parts = urlsplit(urljoin(self.target.base_url, url))
        if f"{parts.scheme}://{parts.netloc}" != self.origin:
            return None
        return parts.path + (f"?{parts.query}" if parts.query else "")

    async def get(
        self, path: str, headers: dict[str, str], deadline: float, *, address: str | None = None
    ) -> Reply | None:
        return await self.request("GET", path, headers, deadline, address=address)

    async def request(
        self,
        method: str,
        path: str,
        headers: dict[str, str],
        deadline: float,
        *,
        data: dict[str, str] | None = None,
        address: str | None = None,
        follow_redirects: bool = True,
    ) -> Reply | None:
        """Send one request (and follow redirects as a browser would, each hop scored).

        None when the cap or the deadline is reached before it could be sent. A transport
        failure gives ``Reply(status=0)``.
        """
        assert self._session is not None, "use Client as an async context manager"
        reply: Reply | None = None
        for _ in range(MAX_REDIRECTS + 1):
            if self.out_of_budget(deadline) or not await self.pacer.wait(deadline):
                return reply
            self.sent += 1
            reply = await self._send(method, path, headers, deadline, data, address or self.address)
            if not follow_redirects or reply.status not in _REDIRECTS:
                return reply
            location = self.same_site_path(reply.headers.get("location", ""))
            if location is None:
                return reply
            if reply.status in (301, 302, 303) and method == "POST":
                # Browsers turn a POST into a GET after these, without the form's body.
                method, data = "GET", None
                headers = {k: v for k, v in headers.items() if k.lower() not in _FORM_ONLY}
            path = location
        return reply

    def _with_cookies(self, headers: dict[str, str], url: str) -> dict[str, str]:
        """The headers with this client's cookies for ``url``.

        A ``Cookie`` entry in ``headers`` marks the browser's place for it (an empty value is
        only the placeholder); without one the cookies go last, as HTTP libraries send them.
        """
        jar = self._jar.filter_cookies(URL(url))
        value = "; ".join(f"{name}={morsel.coded_value}" for name, morsel in jar.items())
        out = {name: given for name, given in headers.items() if name != "Cookie"}
        if not value:
            return out
        if "Cookie" not in headers:
            out["Cookie"] = value
            return out
        return {name: value if name == "Cookie" else given for name, given in headers.items()}

    async def _send(
        self,
        method: str,
        path: str,
        headers: dict[str, str],
        deadline: float,
        data: dict[str, str] | None,
        address: str,
    ) -> Reply:
        assert self._session is not None
        url = self.url(path)
        sent = self._with_cookies(headers, url)
        payload: bytes | None = None
        if data is not None:
            # Encoded here so that Content-Type and Content-Length sit where the header set has
            # them (aiohttp would append them after everything else).
            payload = urlencode(data).encode()
            sent.setdefault("Content-Type", "application/x-www-form-urlencoded")
            sent["Content-Length"] = str(len(payload))
        # A front proxy appends X-Forwarded-For after the client's own headers.
        sent["X-Forwarded-For"] = address
        timeout = max(0.1, min(REQUEST_TIMEOUT_S, deadline - time.monotonic() + DEADLINE_SLACK_S))
        started = time.monotonic()
        try:
            async with self._session.request(
                method,
                url,
                headers=sent,
                data=payload,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=timeout),
            ) as response:
                raw = await response.read()
                if self._cookies:
                    self._jar.update_cookies(response.cookies, response.url)
                status = response.status
                got = {k.lower(): v for k, v in response.headers.items()}
        except (aiohttp.ClientError, TimeoutError, OSError):
            self.result.errors += 1
            return Reply(0, "", path)
        body = raw.decode("utf-8", errors="replace")
        self.result.saw(status, body, self.target.secret, time.monotonic() - started, got)
        return Reply(status, body, path, got)
