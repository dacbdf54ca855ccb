"""facts_from_http: client address, header caps, identity, and never raising."""

from __future__ import annotations

import ipaddress
import timeit
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scrapewarden.core.http_facts import (
    MAX_HEADER_VALUE,
    MAX_HEADERS,
    MAX_PATH,
    facts_from_http,
    normalise_ip,
    parse_timestamp,
)
from scrapewarden.core.policy import Policy

PLAIN = Policy()
BEHIND_PROXY = Policy.model_validate(
    {
        "network": {"trusted_proxies": ["10.0.0.0/8", "127.0.0.1/32", "2001:db8:ff::/48"]},
        "identity": {
            "account_header": "X-Account",
            "account_cookie": "acct",
            "session_cookie": "sid",
            "account_created_header": "x-account-created",
        },
    }
)
FORWARDED = Policy.model_validate(
    {"network": {"trusted_proxies": ["10.0.0.0/8"], "client_ip_header": "Forwarded"}}
)


def facts(policy: Policy = PLAIN, *, peer: str = "198.51.100.7", headers: Any = (), **kw: Any) -> Any:
    args: dict[str, Any] = {"now": 1000.0, "method": "GET", "path": "/", "query": ""}
    args.update(kw)
    return facts_from_http(policy, peer=peer, headers=headers, **args)


# --- addresses -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("192.0.2.1", "192.0.2.1"),
        ("::ffff:192.0.2.1", "192.0.2.1"),
        ("2001:DB8::1", "2001:db8::1"),
        ("2001:0db8:0000::0001", "2001:db8::1"),
        ("fe80::1%eth0", "fe80::1"),
        ("", None),
        ("192.0.2.256", None),
        ("<script>", None),
        ("١٢٧.0.0.1", None),
        ("1" * 100, None),
    ],
)
def test_normalise_ip(raw, expected):
    assert normalise_ip(raw) == expected


def test_peer_is_the_client_without_trusted_proxies():
    result = facts(peer="198.51.100.7", headers=[(b"x-forwarded-for", b"203.0.113.9")])
    assert result.ip == "198.51.100.7"
    assert result.malformed == ()


def test_untrusted_peer_forwarding_header_is_ignored_even_when_proxies_are_configured():
    result = facts(BEHIND_PROXY, peer="198.51.100.7", headers=[(b"x-forwarded-for", b"203.0.113.9")])
    assert result.ip == "198.51.100.7"


def test_trusted_peer_walks_forwarded_for_from_the_right():
    headers = [
        (b"X-Forwarded-For", b"1.1.1.1, 203.0.113.9"),  # leftmost is client-supplied, ignored
        (b"x-forwarded-for", b"10.1.1.1, 10.2.2.2"),
    ]
    result = facts(BEHIND_PROXY, peer="10.9.9.9", headers=headers)
    assert result.ip == "203.0.113.9"
    assert result.malformed == ()


def test_mapped_peer_counts_as_trusted_ipv4():
    result = facts(BEHIND_PROXY, peer="::ffff:127.0.0.1", headers=[(b"x-forwarded-for", b"203.0.113.9")])
    assert result.ip == "203.0.113.9"


def test_ipv6_client_behind_ipv6_proxy_with_brackets_and_port():
    result = facts(BEHIND_PROXY, peer="2001:db8:ff::1", headers=[(b"x-forwarded-for", b"[2001:DB8::AB]:443")])
    assert result.ip == "2001:db8::ab"


def test_ipv4_with_port_in_forwarded_for():
    result = facts(BEHIND_PROXY, peer="10.0.0.1", headers=[(b"x-forwarded-for", b"203.0.113.9:51234")])
    assert result.ip == "203.0.113.9"


def test_all_hops_trusted_takes_the_leftmost():
    result = facts(BEHIND_PROXY, peer="10.0.0.1", headers=[(b"x-forwarded-for", b"10.3.3.3, 10.2.2.2")])
    assert result.ip == "10.3.3.3"


def test_missing_forwarding_header_keeps_peer():
    assert facts(BEHIND_PROXY, peer="10.0.0.1").ip == "10.0.0.1"


@pytest.mark.parametrize(
    "value",
    [
        b"<script>alert(1)</script>",
        b"203.0.113.9, garbage",
        b"[2001:db8::1",
        b"1.2.3.4:http",
        b"\xff\xfe",
        b"::1::2",
    ],
)
def test_bogus_forwarded_for_falls_back_to_peer(value):
    result = facts(BEHIND_PROXY, peer="10.0.0.1", headers=[(b"x-forwarded-for", value)])
    assert result.ip == "10.0.0.1"
    assert "bogus address in forwarding header" in result.malformed


def test_bogus_hop_left_of_the_client_is_never_reached():
    result = facts(BEHIND_PROXY, peer="10.0.0.1", headers=[(b"x-forwarded-for", b"<junk>, 203.0.113.9")])
    assert result.ip == "203.0.113.9"
    assert result.malformed == ()


def test_endless_forwarding_chain_is_cut():
    chain = ", ".join(["10.0.0.1"] * 500).encode()
    result = facts(BEHIND_PROXY, peer="10.0.0.1", headers=[(b"x-forwarded-for", chain)])
    assert result.ip == "10.0.0.1"
    assert "forwarding chain too long" in result.malformed


def test_rfc7239_forwarded_header():
    headers = [(b"forwarded", b'for=192.0.2.60;proto=http;by=203.0.113.43, for="[2001:db8:cafe::17]:4711"')]
    assert facts(FORWARDED, peer="10.0.0.1", headers=headers).ip == "2001:db8:cafe::17"
    headers = [(b"forwarded", b"for=192.0.2.60"), (b"Forwarded", b"For=10.1.2.3;proto=https")]
    assert facts(FORWARDED, peer="10.0.0.1", headers=headers).ip == "192.0.2.60"


@pytest.mark.parametrize("value", [b"proto=https", b"for=unknown", b"for=_hidden", b"for"])
def test_unreadable_forwarded_header_falls_back_to_peer(value):
    result = facts(FORWARDED, peer="10.0.0.1", headers=[(b"forwarded", value)])
    assert result.ip == "10.0.0.1"
    assert result.malformed


@pytest.mark.parametrize("peer", ["not-an-ip", "<b>", "999.1.1.1"])
def test_bogus_peer_gives_unknown_address(peer):
    result = facts(peer=peer)
    assert result.ip == "0.0.0.0"
    assert "peer address is not an IP" in result.malformed


def test_unix_socket_peer_counts_as_trusted_proxy_when_proxies_are_configured():
    result = facts(BEHIND_PROXY, peer="", headers=[(b"x-forwarded-for", b"203.0.113.9")])
    assert result.ip == "203.0.113.9"
    assert facts(PLAIN, peer="").malformed == ("peer address is not an IP",)


def test_peer_with_port_is_accepted():
    assert facts(peer="198.51.100.7:4431").ip == "198.51.100.7"


def test_compiled_policy_cache_is_bounded():
    from scrapewarden.core import http_facts

    for _ in range(200):
        facts(Policy())
    assert len(http_facts._COMPILED) <= http_facts._MAX_COMPILED


# --- headers, path, method ------------------------------------------------------------------


def test_headers_are_decoded_lowercased_and_kept_in_order():
    result = facts(headers=[(b"Host", b"example.org"), (b"User-Agent", b"caf\xe9"), (b"ACCEPT", b"*/*")])
    assert result.headers == (("host", "example.org"), ("user-agent", "café"), ("accept", "*/*"))
    assert result.user_agent == "café"


def test_string_headers_are_accepted_too():
    result = facts(headers=[("User-Agent", "curl/8")])
    assert result.user_agent == "curl/8"


def test_too_many_headers_are_capped():
    result = facts(headers=[(f"x-h{i}".encode(), b"v") for i in range(MAX_HEADERS + 50)])
    assert len(result.headers) == MAX_HEADERS
    assert "too many headers" in result.malformed


def test_long_header_is_truncated_and_flagged_once():
    result = facts(headers=[(b"x-a", b"a" * 20_000), (b"x-b", b"b" * 20_000)])
    assert [len(value) for _, value in result.headers] == [MAX_HEADER_VALUE, MAX_HEADER_VALUE]
    assert result.malformed.count("header too long") == 1


def test_long_path_is_truncated():
    result = facts(path="/" + "a" * 40_000)
    assert len(result.path) == MAX_PATH
    assert "path too long" in result.malformed


@pytest.mark.parametrize(
    ("path", "bad"),
    [
        ("/users/42", False),
        ("/users/%C3%A9", False),  # é, percent-encoded UTF-8
        ("/users/\xc3\xa9", False),  # é as raw UTF-8 bytes (latin-1 decoded by the door)
        ("/users/漢", False),  # already decoded text (a door that had no raw bytes)
        ("/users/%FF", True),
        ("/users/\xff", True),
        ("/users/%C3%28", True),
        ("/users/\ufffd", True),  # a server already replaced bad bytes
        ("/users/\ud800", True),  # lone surrogate
    ],
)
def test_invalid_utf8_in_path(path, bad):
    result = facts(path=path)
    assert result.path == path  # never percent-decoded or rewritten
    assert ("invalid utf-8 in path" in result.malformed) is bad


def test_odd_methods_and_paths_are_flagged():
    assert "unusual method" in facts(method="G E T").malformed
    assert "missing method" in facts(method="").malformed
    assert "path does not start with /" in facts(path="*").malformed


# --- identity --------------------------------------------------------------------------------


def test_identity_from_headers_and_cookies():
    headers = [
        (b"cookie", b"theme=dark; sid=s-1"),
        (b"cookie", b'acct="u-5"; sid=ignored-second'),
        (b"x-account", b" u-9 "),
        (b"x-api-key", b"k-123"),
        (b"x-account-created", b"2024-01-02T03:04:05Z"),
    ]
    result = facts(BEHIND_PROXY, peer="10.0.0.1", headers=headers)
    assert result.account_id == "u-9"  # header beats cookie
    assert result.session_id == "s-1"
    assert result.api_key == "k-123"
    assert result.account_created == 1704164645.0


def test_account_cookie_used_without_header():
    result = facts(BEHIND_PROXY, peer="10.0.0.1", headers=[(b"cookie", b'junk;;=; acct="u-5"')])
    assert result.account_id == "u-5"


def test_explicit_identity_wins():
    headers = [(b"x-account", b"u-9"), (b"x-account-created", b"1700000000")]
    result = facts(BEHIND_PROXY, peer="10.0.0.1", headers=headers, account_id="site-7", account_created=5.0)
    assert (result.account_id, result.account_created) == ("site-7", 5.0)


def test_unparsable_account_created_is_flagged():
    result = facts(BEHIND_PROXY, peer="10.0.0.1", headers=[(b"x-account-created", b"last tuesday")])
    assert result.account_created is None
    assert "unparsable account creation time" in result.malformed


def test_identity_headers_unset_in_policy_are_not_read():
    result = facts(PLAIN, headers=[(b"x-account", b"u-9"), (b"cookie", b"sid=s")])
    assert result.account_id is None and result.session_id is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1700000000", 1700000000.0),
        (" 1700000000.5 ", 1700000000.5),
        ("2024-01-02T03:04:05+00:00", 1704164645.0),
        ("2024-01-02T04:04:05+01:00", 1704164645.0),
        ("2024-01-02 03:04:05", 1704164645.0),  # naive: read as UTC
        ("nan", None),
        ("inf", None),
        ("", None),
        ("tomorrow", None),
    ],
)
def test_parse_timestamp(text, expected):
    assert parse_timestamp(text) == expected


# --- never raises ----------------------------------------------------------------------------

header_bytes = st.binary(max_size=300)
any_text = st.text(max_size=300)
header_lists = st.lists(
    st.tuples(
        st.one_of(header_bytes, st.sampled_from([b"x-forwarded-for", b"cookie", b"x-account", b"forwarded"])),
        st.one_of(header_bytes, any_text.map(lambda t: t.encode("utf-8", "surrogatepass"))),
    ),
    max_size=30,
)


@settings(max_examples=400, deadline=None)
@given(
    policy=st.sampled_from([PLAIN, BEHIND_PROXY, FORWARDED]),
    peer=st.one_of(any_text, st.sampled_from(["10.0.0.1", "127.0.0.1", "::1", "", "2001:db8:ff::9"])),
    method=any_text,
    path=any_text,
    query=any_text,
    headers=header_lists,
)
def test_never_raises_and_always_gives_an_address(policy, peer, method, path, query, headers):
    result = facts_from_http(
        policy, now=1.0, peer=peer, method=method, path=path, query=query, headers=headers
    )
    ipaddress.ip_address(result.ip)
    assert len(result.headers) <= MAX_HEADERS
    assert all(len(value) <= MAX_HEADER_VALUE for _, value in result.headers)
    assert len(result.path) <= MAX_PATH
    assert all(isinstance(reason, str) for reason in result.malformed)


def test_overhead_report(capsys):
    """Prints a rough per-request cost; asserts nothing about speed (machines differ)."""
    headers = [
        (b"host", b"example.org"),
        (b"user-agent", b"Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"),
        (b"accept", b"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
        (b"accept-language", b"en-GB,en;q=0.5"),
        (b"accept-encoding", b"gzip, deflate, br, zstd"),
        (b"x-forwarded-for", b"203.0.113.9, 10.1.2.3"),
        (b"cookie", b"theme=dark; sid=abc123; acct=u-5"),
        (b"connection", b"keep-alive"),
        (b"sec-fetch-mode", b"navigate"),
        (b"upgrade-insecure-requests", b"1"),
    ]
    rounds = 20_000
    seconds = timeit.timeit(
        lambda: facts_from_http(
            BEHIND_PROXY, now=1.0, peer="10.0.0.1", method="GET", path="/users/42", query="", headers=headers
        ),
        number=rounds,
    )
    with capsys.disabled():
        print(f"\nfacts_from_http: {seconds / rounds * 1e6:.1f} µs per request (10 headers, behind a proxy)")


def test_scheme_comes_from_the_door_or_a_trusted_proxy_only():
    from scrapewarden.core.http_facts import facts_from_http
    from scrapewarden.core.policy import Policy

    trusting = Policy(network={"trusted_proxies": ["10.0.0.1/32"]})
    proto = [(b"x-forwarded-proto", b"https")]
    common = {"now": 0.0, "method": "GET", "path": "/", "query": ""}
    assert (
        facts_from_http(Policy(), peer="1.2.3.4", headers=[], scheme="https", **common).extra["scheme"]
        == "https"
    )
    assert "scheme" not in facts_from_http(Policy(), peer="1.2.3.4", headers=[], **common).extra
    # A client claiming https for itself is not believed...
    assert "scheme" not in facts_from_http(trusting, peer="1.2.3.4", headers=proto, **common).extra
    # ...a trusted proxy is.
    assert facts_from_http(trusting, peer="10.0.0.1", headers=proto, **common).extra["scheme"] == "https"
