"""Reading a challenge page and doing its proof-of-work in Python, for protocol-level door tests.

The browser tests use real Chromium; these helpers stand in for the page's script where a test is
about the door (keys, binding, single use, forwarding), not about the page. A client that runs
them is, of course, a client that does the work: the proof-of-work prices clearance, it does not
tell people from programs.
"""

from __future__ import annotations

import hashlib
import html
import re
from dataclasses import dataclass
from typing import Any

_CHALLENGE = re.compile(r'data-challenge="([^"]*)"')
_BITS = re.compile(r'data-bits="(\d+)"')
_NEXT = re.compile(r'name="next" value="([^"]*)"')


@dataclass(frozen=True)
class Challenge:
    token: str
    bits: int
    next: str


def read_page(body: str | bytes) -> Challenge:
    text = body.decode("utf-8") if isinstance(body, bytes) else body
    token, bits, target = _CHALLENGE.search(text), _BITS.search(text), _NEXT.search(text)
    assert token and bits and target, f"not a challenge page: {text[:300]!r}"
    return Challenge(html.unescape(token.group(1)), int(bits.group(1)), html.unescape(target.group(1)))


def zero_bits(digest: bytes) -> int:
    value = int.from_bytes(digest, "big")
    return len(digest) * 8 - value.bit_length()


def solve(token: str, bits: int, limit: int = 1 << 24) -> str:
    """The first decimal nonce giving ``bits`` leading zero bits (what the page's worker finds)."""
    for nonce in range(limit):
        if zero_bits(hashlib.sha256(f"{token}:{nonce}".encode()).digest()) >= bits:
            return str(nonce)
    raise AssertionError(f"no nonce within {limit} tries")


def answer(page: Challenge, **extra: Any) -> dict[str, str]:
    """The form the page's script posts to /.sw/verify."""
    return {
        "challenge": page.token,
        "nonce": solve(page.token, page.bits),
        "next": page.next,
        "signals": "{}",
        **{k: str(v) for k, v in extra.items()},
    }
