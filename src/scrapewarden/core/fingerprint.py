"""Client fingerprints and network keys: ways to group requests beyond one address."""

from __future__ import annotations

import ipaddress
from hashlib import blake2b

from .facts import RequestFacts

_HINTS = ("accept-language", "sec-ch-ua", "sec-ch-ua-platform", "sec-ch-ua-mobile")


_CACHE: dict[tuple[str, tuple[str, ...], tuple[str, ...]], str] = {}
_CACHE_MAX = 65536


def fingerprint(facts: RequestFacts) -> str:
    """Hash of user agent, header names in order, Accept-Language and client hints.

    Stable across processes (blake2b, not ``hash()``) so that shared stores agree. Cookies and
    other per-request values are left out on purpose: rotating them must not change who you are.
    Results are cached: real traffic has few distinct shapes, and hashing is the slow part.
    """
    names = []
    hints = []
    for name, value in facts.headers:
        names.append(name)
        if name in _HINTS:
            hints.append(value)
    key = (facts.user_agent, tuple(names), tuple(hints))
    found = _CACHE.get(key)
    if found is not None:
        return found
    material = "\x00".join((facts.user_agent, ",".join(names), "\x00".join(hints)))
    digest = blake2b(material.encode("utf-8", "surrogateescape"), digest_size=8).hexdigest()
    if len(_CACHE) >= _CACHE_MAX:
        _CACHE.clear()  # crude but bounded; a flood of unique shapes only costs the hashing
    _CACHE[key] = digest
    return digest


def network_of(ip: str, v4_prefix: int = 24, v6_prefix: int = 48) -> str:
    """The network an address belongs to (``/24`` for IPv4 and ``/48`` for IPv6 by default)."""
    if ":" not in ip:
        if v4_prefix == 24:
            head, _, _ = ip.rpartition(".")
            if head:
                return head + ".0/24"
        try:
            return str(ipaddress.IPv4Network(f"{ip}/{v4_prefix}", strict=False))
        except ValueError:
            return ip
    try:
        return str(ipaddress.IPv6Network(f"{ip}/{v6_prefix}", strict=False))
    except ValueError:
        return ip
