"""The simulated visitors and the request mix, shared by every load generator.

Each visitor has its own public IPv4 address (sent as ``X-Forwarded-For``, as a reverse proxy
on loopback would), its own session cookie and one of a few ordinary browser header sets. Each
request picks a visitor at random and a path: mostly a profile ``/users/<1..20000>``, some home
pages and some stylesheet fetches. Spread over thousands of visitors, no single one comes near
its budgets: the benchmark measures what deciding costs, not what refusing does.

:func:`people_only` runs every visitor's headers through a real Warden once and drops the few
whose random address the shipped lists score (a datacenter or VPN range, say), so that the load
is what real people send. (About one random address in ten is in a hosting range.)
"""

from __future__ import annotations

import ipaddress
import random
from dataclasses import dataclass

from ..core.decision import Action
from ..core.policy import Policy

CLIENTS = 5000
PROFILE_IDS = 20000
PROFILE_SHARE = 80
"""Percent of requests that ask for a profile; the rest split between HOME_SHARE and the stylesheet."""
HOME_SHARE = 8
STYLESHEET = "/static/app.css"
SEED = 20240611

# Header sets in the order each browser sends them (Host first, added by the generator).
# Current stable versions at the time of writing; the values are public facts about browsers.
_FIREFOX = (
    ("User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"),
    ("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
    ("Accept-Language", "en-GB,en;q=0.5"),
    ("Accept-Encoding", "gzip, deflate, br, zstd"),
    ("Connection", "keep-alive"),
    ("Upgrade-Insecure-Requests", "1"),
    ("Sec-Fetch-Dest", "document"),
    ("Sec-Fetch-Mode", "navigate"),
    ("Sec-Fetch-Site", "same-origin"),
)
_CHROME = (
    ("Connection", "keep-alive"),
    ("sec-ch-ua", '"Chromium";v="126", "Google Chrome";v="126", "Not-A.Brand";v="8"'),
    ("sec-ch-ua-mobile", "?0"),
    ("sec-ch-ua-platform", '"Windows"'),
    ("Upgrade-Insecure-Requests", "1"),
    (
        "User-Agent",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/126.0.0.0 Safari/537.36",
    ),
    ("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"),
    ("Sec-Fetch-Site", "same-origin"),
    ("Sec-Fetch-Mode", "navigate"),
    ("Sec-Fetch-User", "?1"),
    ("Sec-Fetch-Dest", "document"),
    ("Accept-Encoding", "gzip, deflate, br, zstd"),
    ("Accept-Language", "de-DE,de;q=0.9,en;q=0.8"),
)
_SAFARI = (
    ("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
    ("Sec-Fetch-Site", "same-origin"),
    ("Sec-Fetch-Dest", "document"),
    ("Accept-Language", "fr-FR,fr;q=0.9"),
    ("Sec-Fetch-Mode", "navigate"),
    (
        "User-Agent",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/17.5 Safari/605.1.15",
    ),
    ("Accept-Encoding", "gzip, deflate"),
    ("Connection", "keep-alive"),
)
BROWSERS: tuple[tuple[tuple[str, str], ...], ...] = (_FIREFOX, _CHROME, _SAFARI)


@dataclass(frozen=True, slots=True)
class Visitor:
    ip: str
    session: str
    browser: int
    """Index into :data:`BROWSERS`."""

    def headers(self) -> list[tuple[str, str]]:
        """Everything after ``Host``, in the order sent: browser headers, cookie, proxy header."""
        return [
            *BROWSERS[self.browser],
            ("Cookie", f"sid={self.session}"),
            ("X-Forwarded-For", self.ip),
        ]


def random_public_ipv4(rng: random.Random) -> str:
    """A random globally routable unicast IPv4 address (no private, reserved or multicast)."""
    for _ in range(1000):
        address = ipaddress.IPv4Address(rng.getrandbits(32))
        if address.is_global and not address.is_multicast:
            return str(address)
    raise RuntimeError("could not draw a public address")  # about 1 in 2^1000; never in practice


def make_visitors(count: int = CLIENTS, seed: int = SEED) -> list[Visitor]:
    """``count`` visitors with distinct addresses; the same list for the same seed."""
    rng = random.Random(seed)
    seen: set[str] = set()
    visitors: list[Visitor] = []
    while len(visitors) < count:
        ip = random_public_ipv4(rng)
        if ip in seen:
            continue
        seen.add(ip)
        visitors.append(Visitor(ip=ip, session=f"{rng.getrandbits(64):016x}", browser=len(visitors) % 3))
    return visitors


def people_only(visitors: list[Visitor], policy: Policy, host: str = "127.0.0.1:8000") -> list[Visitor]:
    """The visitors a fresh Warden with ``policy`` finds nothing against on a first profile request."""
    from ..warden import Warden

    warden = Warden(policy, state="memory://")
    try:
        kept = []
        for number, visitor in enumerate(visitors, 1):
            headers = [(b"host", host.encode())]
            headers += [(name.lower().encode(), value.encode()) for name, value in visitor.headers()]
            decision = warden.decide_http(
                peer="127.0.0.1", method="GET", path=f"/users/{number}", query="", headers=headers
            )
            if decision.action is Action.ALLOW and decision.score == 0.0:
                kept.append(visitor)
        return kept
    finally:
        warden.close()


def people_visitors(policy: Policy, count: int = CLIENTS) -> list[Visitor]:
    """``count`` visitors (fewer only if the policy flags very many) that ``policy`` sees as people."""
    return people_only(make_visitors(count + count // 4), policy)[:count]


def pick_path(rng: random.Random) -> str:
    """One path from the request mix (the Python generator's twin of the wrk script's choice)."""
    roll = rng.randrange(100)
    if roll < PROFILE_SHARE:
        return f"/users/{rng.randint(1, PROFILE_IDS)}"
    if roll < PROFILE_SHARE + HOME_SHARE:
        return "/"
    return STYLESHEET
