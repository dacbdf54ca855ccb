"""Pseudonymizer: keyed, deterministic, visibly marked, and off when there is no key."""

from __future__ import annotations

import hashlib
import hmac
import re
import subprocess
import sys

import pytest

from scrapewarden.core.policy import PrivacyPolicy
from scrapewarden.core.pseudonym import Pseudonymizer, network_of

KEY = b"test key, not a secret"


def test_output_is_a_marked_truncated_hmac() -> None:
    p = Pseudonymizer(KEY)
    expected = hmac.new(KEY, b"ip\x00203.0.113.7", hashlib.sha256).hexdigest()[:16]
    assert p.ip("203.0.113.7") == f"ip~{expected}"
    assert re.fullmatch(r"account~[0-9a-f]{16}", p.account("alice@example.org"))
    assert re.fullmatch(r"session~[0-9a-f]{16}", p.generic("session", "abc"))
    assert len(Pseudonymizer(KEY, hex_chars=32).ip("203.0.113.7")) == len("ip~") + 32


def test_same_key_same_output_different_key_different_output() -> None:
    a, b, other = Pseudonymizer(KEY), Pseudonymizer(KEY), Pseudonymizer(b"another key")
    assert a.ip("203.0.113.7") == b.ip("203.0.113.7")
    assert a.account("42") == b.account("42")
    assert a.ip("203.0.113.7") != other.ip("203.0.113.7")
    assert a.ip("203.0.113.7") != a.ip("203.0.113.8")


def test_same_key_same_output_in_another_process() -> None:
    code = (
        "from scrapewarden.core.pseudonym import Pseudonymizer;"
        f"p = Pseudonymizer({KEY!r});"
        "print(p.ip('203.0.113.7'), p.account('42'), p.network('203.0.113.7'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    p = Pseudonymizer(KEY)
    assert out.split() == [p.ip("203.0.113.7"), p.account("42"), p.network("203.0.113.7")]


def test_kinds_never_collide() -> None:
    p = Pseudonymizer(KEY)
    assert p.generic("ip", "x").split("~")[1] != p.generic("account", "x").split("~")[1]
    # The separator keeps ("ab", "c") and ("a", "bc") apart.
    assert p.generic("ab", "c").split("~")[1] != p.generic("a", "bc").split("~")[1]


def test_equal_addresses_written_differently_share_a_pseudonym() -> None:
    p = Pseudonymizer(KEY)
    assert p.ip("2001:DB8::1") == p.ip("2001:db8:0:0::1")
    assert p.ip("::ffff:203.0.113.7") == p.ip("203.0.113.7")
    assert p.ip(" 203.0.113.7 ") == p.ip("203.0.113.7")


def test_networks_group_addresses() -> None:
    p = Pseudonymizer(KEY)
    assert p.network("203.0.113.7") == p.network("203.0.113.250")
    assert p.network("203.0.113.7") != p.network("203.0.114.7")
    assert p.network("2001:db8:1:2::1") == p.network("2001:db8:1:ffff::9")
    assert p.network("2001:db8:1::1") != p.network("2001:db8:2::1")
    assert p.network("203.0.113.7", v4_prefix=16) == p.network("203.0.200.1", v4_prefix=16)
    assert p.network("203.0.113.7").startswith("net~")
    # A network pseudonym never equals the address pseudonym of the network's first address.
    assert p.network("203.0.113.0") != p.ip("203.0.113.0")


def test_network_of_in_cidr_form() -> None:
    assert network_of("203.0.113.7") == "203.0.113.0/24"
    assert network_of("2001:db8:1:2::1") == "2001:db8:1::/48"
    assert network_of("::ffff:198.51.100.9", 16) == "198.51.0.0/16"
    assert network_of("garbage") == "garbage"


def test_no_key_means_identity() -> None:
    p = Pseudonymizer(None)
    assert not p.enabled
    assert p.ip("203.0.113.7") == "203.0.113.7"
    assert p.ip("2001:DB8::1") == "2001:db8::1"  # still normalised, so values group
    assert p.account("alice") == "alice"
    assert p.network("203.0.113.7") == "203.0.113.0/24"


@pytest.mark.parametrize("value", ["", "not-an-ip", "\ud800", "999.1.1.1", "x" * 10_000, "\x00"])
def test_bad_input_is_hashed_not_raised_on(value: str) -> None:
    p = Pseudonymizer(KEY)
    assert p.ip(value).startswith("ip~")
    assert p.network(value).startswith("net~")
    assert p.account(value).startswith("account~")


def test_empty_key_is_refused() -> None:
    with pytest.raises(ValueError, match="None"):
        Pseudonymizer(b"")


def test_from_policy() -> None:
    assert not Pseudonymizer.from_policy(PrivacyPolicy(pseudonymize=False)).enabled
    keyed = Pseudonymizer.from_policy(PrivacyPolicy(key="k1"))
    assert keyed.ip("203.0.113.7") == Pseudonymizer(b"k1").ip("203.0.113.7")
    fallback = Pseudonymizer.from_policy(PrivacyPolicy(), fallback_key=b"fb")
    assert fallback.ip("203.0.113.7") == Pseudonymizer(b"fb").ip("203.0.113.7")
    # Without any key, each pseudonymizer gets its own random one.
    one, two = Pseudonymizer.from_policy(PrivacyPolicy()), Pseudonymizer.from_policy(PrivacyPolicy())
    assert one.enabled and one.ip("203.0.113.7") != two.ip("203.0.113.7")
