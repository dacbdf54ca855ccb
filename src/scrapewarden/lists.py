"""Load the shipped bot and address lists from the package data (``scrapewarden/data``).

Loading takes a fraction of a second (about 65,000 networks and 1,650 patterns), so both
loaders are cached: every engine and worker thread in a process shares one copy. See each
data folder's SOURCE.md for origin and licence, and ``tools/build_lists.py`` to refresh them.

The operator's own lists come from the policy: ``reputation.extra_lists``, ``allow.networks``
and ``deny.networks`` (see :meth:`IpRanges.with_policy`, which :class:`IpReputation` applies).
"""

from __future__ import annotations

import gzip
import json
from functools import cache
from importlib import resources

from .core.detectors.client import ClientSanity
from .core.detectors.reputation import IpRanges, IpReputation
from .core.detectors.ua_patterns import BotPatterns
from .core.policy import Policy

CRAWLER_RANGE_FILES = ("googlebot", "bingbot", "duckduckbot", "duckassistbot", "openai", "perplexity")
"""Bots with published address ranges in ``data/lord-alfred-ipranges/<bot>.txt``."""


def _read(folder: str, name: str) -> str:
    data = resources.files("scrapewarden").joinpath("data").joinpath(folder).joinpath(name).read_bytes()
    if name.endswith(".gz"):
        data = gzip.decompress(data)
    return data.decode("utf-8")


def _lines(folder: str, name: str) -> list[str]:
    return [line for line in _read(folder, name).splitlines() if line and not line.startswith("#")]


@cache
def load_bot_patterns() -> BotPatterns:
    """crawler-user-agents' patterns plus ai.robots.txt's AI crawler tokens."""
    entries = json.loads(_read("crawler-user-agents", "patterns.json"))
    tokens = json.loads(_read("ai-robots-txt", "tokens.json"))
    return BotPatterns(((e["pattern"], tuple(e.get("tags", ()))) for e in entries), tokens)


@cache
def load_ip_ranges() -> IpRanges:
    """Shipped datacenter, VPN, Tor and crawler lists (no policy lists: see ``with_policy``)."""
    return IpRanges(
        datacenter=_lines("x4bnet-lists-vpn", "datacenter.txt.gz")
        + _lines("client9-ipcat", "datacenters.txt.gz"),
        vpn=_lines("x4bnet-lists-vpn", "vpn.txt.gz") + _lines("lord-alfred-ipranges", "protonvpn.txt"),
        tor=_lines("tor-exit-nodes", "exits.txt.gz"),
        crawlers={bot: _lines("lord-alfred-ipranges", f"{bot}.txt") for bot in CRAWLER_RANGE_FILES},
        canonical=True,  # tools/build_lists.py writes ipaddress's canonical form
    )


def ip_ranges_for(policy: Policy) -> IpRanges:
    """The shipped lists plus the policy's allow, deny and extra lists."""
    return load_ip_ranges().with_policy(policy)


def client_sanity(policy: Policy) -> ClientSanity:
    """A :class:`ClientSanity` with the shipped bot patterns."""
    return ClientSanity(policy, load_bot_patterns())


def ip_reputation(policy: Policy) -> IpReputation:
    """An :class:`IpReputation` with the shipped lists and the policy's own."""
    return IpReputation(policy, load_ip_ranges())
