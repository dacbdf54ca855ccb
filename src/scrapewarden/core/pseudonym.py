"""Pseudonymisation: keyed hashes instead of addresses and account ids in what we store.

``Pseudonymizer(key).ip("203.0.113.7")`` gives ``ip~3fa9c2...``: the same input and key always
give the same output (so counts and bans still group correctly, across processes and
restarts), but without the key nobody can test guesses against it, which a plain hash of an
IPv4 address would allow in seconds. The ``kind~`` prefix shows a reader that the value is a
pseudonym, and the kind is part of the hashed message so ``ip~`` and ``account~`` values for
the same text never coincide. ``key=None`` turns pseudonymisation off (values pass unchanged).

Pure: no I/O. The only non-determinism is the random key ``from_policy`` makes when the policy
has none, which is documented there.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets

from .policy import PrivacyPolicy

DEFAULT_HEX_CHARS = 16
"""64 bits: collisions are negligible for the number of clients one site sees."""


class Pseudonymizer:
    """Keyed HMAC-SHA256 pseudonyms, truncated to ``hex_chars`` hex digits."""

    __slots__ = ("_key", "hex_chars")

    def __init__(self, key: bytes | None, *, hex_chars: int = DEFAULT_HEX_CHARS) -> None:
        if key is not None and not key:
            raise ValueError("empty pseudonymisation key; pass None to turn pseudonymisation off")
        if not 8 <= hex_chars <= 64:
            raise ValueError("hex_chars must be between 8 and 64")
        self._key = key
        self.hex_chars = hex_chars

    @classmethod
    def from_policy(cls, privacy: PrivacyPolicy, *, fallback_key: bytes | None = None) -> Pseudonymizer:
        """The pseudonymizer a policy asks for.

        ``privacy.pseudonymize`` false: identity. An empty ``privacy.key``: ``fallback_key``, or
        else a fresh random key, which means pseudonyms change on every restart and differ
        between processes (so set a key in production).
        """
        if not privacy.pseudonymize:
            return cls(None)
        if privacy.key:
            return cls(privacy.key.encode("utf-8"))
        return cls(fallback_key or secrets.token_bytes(32))

    @property
    def enabled(self) -> bool:
        return self._key is not None

    def generic(self, kind: str, value: str) -> str:
        """``kind~<hex>`` for ``value``; ``value`` unchanged when pseudonymisation is off."""
        if self._key is None:
            return value
        # kind, a NUL, then the value: no (kind, value) pair can produce another pair's message.
        message = kind.encode("utf-8", "surrogatepass") + b"\x00" + value.encode("utf-8", "surrogatepass")
        digest = hmac.new(self._key, message, hashlib.sha256).hexdigest()
        return f"{kind}~{digest[: self.hex_chars]}"

    def unit(self, kind: str, value: str) -> float:
        """A number in [0, 1) fixed by ``value`` and the key (uniform over values): what picks
        a sample of actors (:mod:`.sampling`). Without a key (pseudonymisation off, values are
        stored as they are anyway) an unkeyed SHA-256."""
        message = kind.encode("utf-8", "surrogatepass") + b"\x00" + value.encode("utf-8", "surrogatepass")
        if self._key is None:
            digest = hashlib.sha256(message).digest()
        else:
            digest = hmac.new(self._key, b"unit\x00" + message, hashlib.sha256).digest()
        return int.from_bytes(digest[:8], "big") / 2**64

    def ip(self, value: str) -> str:
        """Pseudonym of a client address, normalised first so equal addresses match.

        ``2001:DB8::1`` and ``2001:db8:0::1`` are the same client; an IPv4-mapped IPv6 address
        is its IPv4 address. Text that is not an address is still hashed (never raised on).
        """
        return self.generic("ip", _normalise_ip(value))

    def account(self, value: str) -> str:
        return self.generic("account", value)

    def network(self, ip: str, v4_prefix: int = 24, v6_prefix: int = 48) -> str:
        """Pseudonym of the network ``ip`` belongs to, so operators can still group by /24.

        With pseudonymisation off this is the network in CIDR form, e.g. ``203.0.113.0/24``.
        """
        return self.generic("net", network_of(ip, v4_prefix, v6_prefix))


def _parse_ip(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(value.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _normalise_ip(value: str) -> str:
    address = _parse_ip(value)
    return value if address is None else str(address)


def network_of(ip: str, v4_prefix: int = 24, v6_prefix: int = 48) -> str:
    """The CIDR of the ``/v4_prefix`` or ``/v6_prefix`` network holding ``ip``.

    Text that is not an address comes back unchanged, so it still groups with itself.
    """
    address = _parse_ip(ip)
    if address is None:
        return ip
    prefix = v4_prefix if address.version == 4 else v6_prefix
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))
