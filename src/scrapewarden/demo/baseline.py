"""The baseline the demo compares against: a per-address rate limit like nginx's ``limit_req``.

:class:`PerIpLimit` is ASGI middleware that behaves like the setting most tutorials give::

    limit_req_zone $binary_remote_addr zone=perip:10m rate=5r/s;
    limit_req zone=perip burst=10 nodelay;
    limit_req_status 429;

The choices, and why:

- **Leaky bucket per client address, with nginx's arithmetic.** Each address has an "excess"
  that drains at ``rate_per_s`` and grows by one per request; a request that would take it above
  ``burst`` is refused and does not count. So a fresh address gets ``burst + 1`` requests at once,
  then ``rate_per_s`` per second.
- **nodelay**: requests within the burst are answered at once instead of being spaced out.
- **429 with Retry-After.** nginx answers 503 by default; sites that think about it set
  ``limit_req_status 429``, which is also what a scoring client reads as "throttled". Retry-After
  is the time until the bucket would take one more request.
- **The client address** is the socket peer, unless the peer is a trusted proxy (like nginx's
  ``set_real_ip_from`` + ``real_ip_header X-Forwarded-For`` + ``real_ip_recursive on``): then the
  rightmost X-Forwarded-For address that is not itself a trusted proxy.
- **Every request counts**, pages and assets alike, as when ``limit_req`` sits at server level.
- **Bounded memory**: like nginx's fixed-size zone, idle addresses (whose bucket has drained)
  are forgotten when the table is full.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MAX_ADDRESSES = 100_000


class PerIpLimit:
    def __init__(
        self,
        app: ASGIApp,
        rate_per_s: float = 5.0,
        burst: int = 10,
        trusted_proxies: Iterable[str] = ("127.0.0.1/32",),
        *,
        clock: Callable[[], float] = time.monotonic,
        max_addresses: int = MAX_ADDRESSES,
    ) -> None:
        if rate_per_s <= 0 or burst < 0:
            raise ValueError("rate_per_s must be > 0 and burst >= 0")
        self.app = app
        self.rate = rate_per_s
        self.burst = float(burst)
        self.trusted = [ipaddress.ip_network(cidr, strict=False) for cidr in trusted_proxies]
        self.clock = clock
        self.max_addresses = max_addresses
        self._buckets: dict[str, tuple[float, float]] = {}
        """address -> (excess, time of last accepted request)."""
        self.refused = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        wait = self.take(self.client_address(scope))
        if wait is None:
            await self.app(scope, receive, send)
            return
        self.refused += 1
        body = b"Too many requests. Slow down and try again shortly.\n"
        headers = [
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", str(len(body)).encode()),
            (b"retry-after", str(wait).encode()),
        ]
        await send({"type": "http.response.start", "status": 429, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if scope.get("method") == "HEAD" else body})

    def take(self, address: str) -> int | None:
        """Count one request from ``address``: None if it may pass, else seconds to wait."""
        now = self.clock()
        found = self._buckets.get(address)
        if found is None:
            excess = 0.0  # nginx starts a new address at zero: burst + 1 requests pass at once
        else:
            last_excess, last = found
            # nginx clamps after adding this request, so a long-idle address starts again at 0.
            excess = max(0.0, last_excess - self.rate * max(0.0, now - last) + 1.0)
            if excess > self.burst:
                return max(1, math.ceil((excess - self.burst) / self.rate))
        if found is None and len(self._buckets) >= self.max_addresses:
            self._forget_idle(now)
        self._buckets[address] = (excess, now)
        return None

    def _forget_idle(self, now: float) -> None:
        drained = [a for a, (excess, last) in self._buckets.items() if excess - self.rate * (now - last) <= 0]
        for address in drained:
            del self._buckets[address]
        if len(self._buckets) >= self.max_addresses:
            # Everyone is busy: drop the oldest half rather than grow without bound.
            for address in list(self._buckets)[: len(self._buckets) // 2]:
                del self._buckets[address]

    def _is_trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.trusted)

    def client_address(self, scope: Scope) -> str:
        client = scope.get("client")
        peer = str(client[0]) if client else ""
        if not self._is_trusted(peer):
            return peer
        forwarded: list[str] = []
        for name, value in scope.get("headers") or ():
            if bytes(name).lower() == b"x-forwarded-for":
                forwarded.extend(bytes(value).decode("latin-1").split(","))
        for token in reversed(forwarded):
            token = token.strip()
            try:
                address = str(ipaddress.ip_address(token))
            except ValueError:
                return peer  # unreadable: believe only what we saw ourselves
            if not self._is_trusted(address):
                return address
        return peer
