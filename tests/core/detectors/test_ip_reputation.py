"""IP reputation against real list entries, the policy's own lists, and junk addresses."""

from __future__ import annotations

import csv
import ipaddress

import pytest
from conftest import shared_data
from hypothesis import given
from hypothesis import strategies as st

from scrapewarden.core.detectors.reputation import IpRanges, IpReputation, NetworkList
from scrapewarden.core.policy import Policy
from scrapewarden.lists import load_ip_ranges


@pytest.fixture(scope="module")
def reputation() -> IpReputation:
    return IpReputation(Policy(), load_ip_ranges())


def _inside(cidr: str) -> str:
    """An address inside ``cidr`` (its last one, so not just the network address)."""
    return str(ipaddress.ip_network(cidr.strip()).broadcast_address)


def names(reputation: IpReputation, ip: str) -> list[str]:
    return [e.detector for e in reputation.check(ip)]


def test_datacenter_entries_from_the_upstream_list(reputation: IpReputation) -> None:
    upstream = (shared_data() / "x4bnet-lists-vpn" / "datacenter" / "ipv4.txt").read_text().split()
    upstream += (shared_data() / "x4bnet-lists-vpn" / "datacenter" / "ipv6.txt").read_text().split()
    sample = upstream[:: max(1, len(upstream) // 200)]
    vpn = load_ip_ranges().vpn
    for cidr in sample:
        ip = _inside(cidr)
        expected = "reputation.vpn" if ip in vpn else "reputation.datacenter"
        assert names(reputation, ip) in ([expected], ["reputation.tor"]), cidr


def test_ipcat_ranges_are_datacenter_too(reputation: IpReputation) -> None:
    with (shared_data() / "client9-ipcat" / "datacenters.csv").open() as fh:
        rows = list(csv.reader(fh))
    for row in rows[::50]:
        assert names(reputation, row[1]) != [], row


def test_tor_exits(reputation: IpReputation) -> None:
    with (shared_data() / "tor-exit-nodes" / "latest.exits.csv").open() as fh:
        rows = list(csv.reader(fh, skipinitialspace=True))[1:]
    addresses = {row[1] for row in rows}
    assert any(":" in a for a in addresses)  # IPv6 exits are in the same tree
    for address in sorted(addresses)[::40]:
        evidence = reputation.check(address)
        # One origin finding per address: Tor wins over the hosting network it sits in.
        assert [e.detector for e in evidence] == ["reputation.tor"], address
        assert evidence[0].weight == Policy().reputation.tor and evidence[0].actor == "ip"


def test_crawler_ranges(reputation: IpReputation) -> None:
    for cidr in (
        (shared_data() / "lord-alfred-ipranges" / "googlebot" / "ipv4_merged.txt").read_text().split()
    ):
        assert reputation.in_crawler_range(_inside(cidr), "googlebot")
    assert reputation.in_crawler_range("66.249.66.1", "googlebot")
    assert not reputation.in_crawler_range("66.249.66.1", "bingbot")
    assert not reputation.in_crawler_range("192.0.2.1", "googlebot")
    assert not reputation.in_crawler_range("66.249.66.1", "no-such-bot")


def test_documentation_and_residential_style_addresses_are_clean(reputation: IpReputation) -> None:
    for ip in ["192.0.2.1", "198.51.100.7", "2001:db8::1", "127.0.0.1", "::1", "10.1.2.3"]:
        assert reputation.check(ip) == [], ip


@pytest.mark.parametrize("ip", ["", "garbage", "localhost", "1.2.3.4\x00", "999.1.1.1", "::g", "a" * 10_000])
def test_bad_addresses_never_raise(reputation: IpReputation, ip: str) -> None:
    assert reputation.check(ip) == []
    assert reputation.allowed(ip) is False
    assert reputation.denied(ip) is False
    assert reputation.in_crawler_range(ip, "googlebot") is False


@given(st.text(max_size=60))
def test_any_text_is_safe(ip: str) -> None:
    reputation = IpReputation(Policy(), load_ip_ranges())
    assert isinstance(reputation.check(ip), list)


def test_policy_allow_deny_and_extra_lists() -> None:
    policy = Policy(
        allow={"networks": ["203.0.113.0/28"]},
        deny={"networks": ["198.51.100.0/24", "2001:db8:bad::/48"]},
        reputation={"extra_lists": {"abusers": ["192.0.2.0/24"]}, "extra_weight": 42},
    )
    reputation = IpReputation(policy, load_ip_ranges())
    assert reputation.allowed("203.0.113.5") and not reputation.allowed("203.0.113.99")
    assert reputation.denied("198.51.100.200") and reputation.denied("2001:db8:bad::7")
    assert not reputation.denied("2001:db8::1")
    evidence = reputation.check("192.0.2.10")
    assert [(e.detector, e.weight) for e in evidence] == [("reputation.list:abusers", 42)]
    # The shared, cached lists are not changed by one policy's additions.
    assert not IpReputation(Policy(), load_ip_ranges()).denied("198.51.100.200")


def test_bad_extra_list_entry_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="not an IP network"):
        IpReputation(Policy(reputation={"extra_lists": {"x": ["not-a-network"]}}), load_ip_ranges())


def test_zero_weight_turns_a_list_off() -> None:
    ranges = IpRanges(datacenter=["192.0.2.0/24"], vpn=["198.51.100.0/24"])
    assert IpReputation(Policy(reputation={"datacenter": 0}), ranges).check("192.0.2.1") == []
    assert [e.detector for e in IpReputation(Policy(), ranges).check("192.0.2.1")] == [
        "reputation.datacenter"
    ]


def test_vpn_wins_over_datacenter() -> None:
    ranges = IpRanges(datacenter=["192.0.2.0/24"], vpn=["192.0.2.128/25"])
    assert [e.detector for e in IpReputation(Policy(), ranges).check("192.0.2.200")] == ["reputation.vpn"]


def test_network_list_skips_junk_unless_strict() -> None:
    networks = NetworkList(["192.0.2.0/24", "junk", "# comment", "", "2001:db8::/32"])
    assert len(networks) == 2 and "2001:db8::5" in networks and "192.0.2.9" in networks
    with pytest.raises(ValueError):
        NetworkList(["junk"], strict=True)


def test_reasons_do_not_contain_the_address(reputation: IpReputation) -> None:
    # Stored events are pseudonymised; the address must not leak through a reason text.
    ip = "185.220.101.1" if reputation.check("185.220.101.1") else _inside("1.12.0.0/14")
    for evidence in reputation.check(ip):
        assert ip not in evidence.reason
