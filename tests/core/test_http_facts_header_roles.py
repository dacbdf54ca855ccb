"""Header roles and trusted-proxy matching at scale (the fast paths of ``facts_from_http``)."""

from __future__ import annotations

import ipaddress

from scrapewarden.core.http_facts import facts_from_http
from scrapewarden.core.policy import Policy

BEHIND_PROXY = Policy.model_validate({"network": {"trusted_proxies": ["127.0.0.1/32", "2001:db8:ff::/48"]}})


def facts(policy: Policy, peer: str, headers: list[tuple[bytes, bytes]]):  # type: ignore[no-untyped-def]
    return facts_from_http(policy, now=1.0, peer=peer, method="GET", path="/", query="", headers=headers)


def test_many_more_clients_than_any_cache_are_all_read_from_the_proxy_header() -> None:
    for n in range(10_000):
        client = str(ipaddress.IPv4Address(0x5E000000 + n * 7))
        assert facts(BEHIND_PROXY, "127.0.0.1", [(b"x-forwarded-for", client.encode())]).ip == client


def test_untrusted_peer_is_the_client_whatever_it_forwards() -> None:
    for peer in ("127.0.0.2", "2001:db8:fe::1", "10.0.0.1"):
        assert facts(BEHIND_PROXY, peer, [(b"x-forwarded-for", b"198.51.100.1")]).ip == peer


def test_a_name_configured_for_two_roles_keeps_the_first_role() -> None:
    # The account header comes before the API key header in precedence, as it always has.
    policy = Policy.model_validate({"identity": {"account_header": "X-Api-Key"}})
    result = facts(policy, "198.51.100.2", [(b"X-Api-Key", b" alice ")])
    assert result.account_id == "alice"
    assert result.api_key is None


def test_only_the_first_user_agent_and_every_forwarding_line_count() -> None:
    result = facts(
        BEHIND_PROXY,
        "127.0.0.1",
        [
            (b"User-Agent", b"first"),
            (b"user-agent", b"second"),
            (b"X-Forwarded-For", b"203.0.113.5"),
            (b"x-forwarded-for", b"198.51.100.7, 127.0.0.1"),
        ],
    )
    assert result.user_agent == "first"
    assert result.ip == "198.51.100.7"
