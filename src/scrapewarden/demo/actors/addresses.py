"""Simulated public addresses for the actors (sent in ``X-Forwarded-For``).

Every draw is checked against the lists scrapewarden ships, so the suite tests what it claims:
a *residential* address is on no datacenter, VPN, Tor or crawler list; a *hosting* address is
in a shipped datacenter network; the good bot's address is inside Google's published Googlebot
ranges. Draws come from a few well-known networks (consumer ISPs, cloud providers) and are
re-drawn until they pass, so the suite keeps working when the shipped lists are refreshed.
"""

from __future__ import annotations

import ipaddress
import random
from functools import cache

from ...core.detectors.reputation import IpReputation
from ...core.policy import Policy
from ...lists import ip_reputation, load_ip_ranges

# Large consumer-ISP blocks (cable, DSL, fibre, mobile) in several countries: where people and
# residential proxies' exit addresses live. Only used as a place to draw from; the shipped
# lists have the last word.
RESIDENTIAL_NETWORKS = (
    "73.0.0.0/8",  # Comcast (US)
    "71.0.0.0/9",  # Verizon and others (US)
    "98.192.0.0/10",  # Comcast (US)
    "76.0.0.0/10",  # Charter and others (US)
    "86.128.0.0/10",  # BT (UK)
    "81.96.0.0/11",  # Virgin Media (UK)
    "90.0.0.0/9",  # Orange (FR)
    "79.192.0.0/10",  # Deutsche Telekom (DE)
    "84.128.0.0/10",  # Deutsche Telekom (DE)
    "83.32.0.0/11",  # Telefónica (ES)
    "82.48.0.0/12",  # Telecom Italia (IT)
    "189.0.0.0/11",  # Brazilian broadband
    "110.0.0.0/10",  # Asia-Pacific broadband
    "121.128.0.0/10",  # Korean broadband
    "126.0.0.0/8",  # SoftBank (JP)
)

# Cloud and hosting providers' blocks (DigitalOcean, Hetzner, Scaleway, AWS, Linode...).
HOSTING_NETWORKS = (
    "159.203.0.0/16",
    "167.99.0.0/16",
    "178.62.0.0/16",
    "138.68.0.0/16",
    "104.131.0.0/16",
    "139.59.0.0/16",
    "188.166.0.0/16",
    "68.183.0.0/16",
    "134.209.0.0/16",
    "165.227.0.0/16",
    "206.189.0.0/16",
    "128.199.0.0/16",
    "142.93.0.0/16",
    "5.9.0.0/16",
    "95.216.0.0/16",
    "51.15.0.0/16",
)

GOOGLEBOT_NETWORKS = ("66.249.64.0/19",)
"""Google's long-standing Googlebot block; draws are confirmed against the shipped list."""

MAX_DRAWS = 10_000


@cache
def _reputation() -> IpReputation:
    return ip_reputation(Policy())


def is_clean(ip: str) -> bool:
    """On none of the shipped lists (datacenter, VPN, Tor) and in no crawler range."""
    if _reputation().check(ip):
        return False
    return not any(ip in tree for tree in load_ip_ranges().crawlers.values())


def _random_host(network: str, rng: random.Random) -> ipaddress.IPv4Address:
    net = ipaddress.IPv4Network(network)
    # Skip the first and last address of every /24 (.0 and .255 look like no real client).
    while True:
        address = net[rng.randrange(net.num_addresses)]
        if 0 < int(address) & 0xFF < 255:
            return address


def residential_address(rng: random.Random, *, avoid_slash24: set[str] | None = None) -> str:
    """A public, residential-looking IPv4 address on none of the shipped lists.

    ``avoid_slash24``: /24 networks (``a.b.c``) already used; the draw avoids and adds to it,
    so a series of draws gives unrelated addresses.
    """
    for _ in range(MAX_DRAWS):
        address = _random_host(rng.choice(RESIDENTIAL_NETWORKS), rng)
        text = str(address)
        prefix = text.rsplit(".", 1)[0]
        if not address.is_global or (avoid_slash24 is not None and prefix in avoid_slash24):
            continue
        if is_clean(text):
            if avoid_slash24 is not None:
                avoid_slash24.add(prefix)
            return text
    raise RuntimeError("could not draw a residential address off the shipped lists")


def residential_addresses(n: int, rng: random.Random) -> list[str]:
    """``n`` residential addresses, each in a different /24 (unrelated to one another)."""
    used: set[str] = set()
    return [residential_address(rng, avoid_slash24=used) for _ in range(n)]


def _is_hosting(ip: str) -> bool:
    ranges = load_ip_ranges()
    return ip in ranges.datacenter and not any(ip in tree for tree in ranges.crawlers.values())


def hosting_address(rng: random.Random) -> str:
    """An address in a shipped datacenter network (and in no crawler's published range)."""
    for _ in range(MAX_DRAWS):
        text = str(_random_host(rng.choice(HOSTING_NETWORKS), rng))
        if _is_hosting(text):
            return text
    raise RuntimeError("could not draw a hosting address from the shipped lists")


def hosting_slash24(rng: random.Random) -> list[str]:
    """All 256 addresses of one /24 that lies wholly in a shipped datacenter network."""
    for _ in range(MAX_DRAWS):
        base = ipaddress.IPv4Address(int(ipaddress.IPv4Address(hosting_address(rng))) & ~0xFF)
        addresses = [str(base + i) for i in range(256)]
        if all(_is_hosting(a) for a in addresses):
            return addresses
    raise RuntimeError("could not find a hosting /24 in the shipped lists")


def googlebot_address(rng: random.Random) -> str:
    """An address inside Google's published Googlebot ranges (as shipped)."""
    tree = load_ip_ranges().crawlers.get("googlebot")
    for _ in range(MAX_DRAWS):
        text = str(_random_host(rng.choice(GOOGLEBOT_NETWORKS), rng))
        if tree is not None and text in tree:
            return text
    raise RuntimeError("could not draw an address in the shipped Googlebot ranges")
