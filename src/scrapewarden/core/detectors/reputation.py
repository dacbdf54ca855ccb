"""IP reputation: where an address comes from, by longest-prefix match in radix trees.

Lists (shipped ones loaded by :mod:`scrapewarden.lists`, the operator's from the policy):

* ``datacenter``: hosting and cloud networks, where people rarely browse from;
* ``vpn``: commercial VPN networks; ``tor``: Tor exit addresses;
* ``crawlers``: published address ranges per crawler (``googlebot``, ``bingbot``...), used to
  verify a crawler's claim without DNS;
* ``allow``/``deny``: the policy's ``allow.networks``/``deny.networks``;
* ``extra``: the policy's ``reputation.extra_lists``, scored as ``reputation.list:<name>``.

One tree per list holds IPv4 and IPv6 alike. A look-up costs about 0.2 µs, so nothing is
cached per address. Bad address strings never raise: they are simply on no list.

Pure: no I/O; the trees are built from already loaded CIDR strings.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from typing import Protocol

import radix

from ..decision import Evidence
from ..policy import Policy

_ACTOR = "ip"


class BotVerdicts(Protocol):
    """Cached answers to "is this address really that crawler?"; None while unknown.

    Implemented by :class:`scrapewarden.bot_verify.BotVerifier` (forward-confirmed reverse DNS).
    """

    def verdict(self, ip: str, claimed: str) -> bool | None: ...


class NetworkList:
    """A set of networks (IPv4 and IPv6) with fast membership tests."""

    __slots__ = ("_tree", "size")

    def __init__(self, cidrs: Iterable[str] = (), *, strict: bool = False, canonical: bool = False) -> None:
        """Entries that are not networks are skipped, or with ``strict`` raise ValueError.

        ``canonical``: the entries are already in ``ipaddress`` string form (the shipped lists
        are), so the slow re-parsing is skipped (about three times faster to load).
        """
        self._tree = radix.Radix()
        self.size = 0
        for cidr in cidrs:
            self.add(cidr, strict=strict, canonical=canonical)

    def add(self, cidr: str, *, strict: bool = False, canonical: bool = False) -> bool:
        text = cidr.strip()
        if not text or text.startswith("#"):
            return False
        try:
            # Canonical form first: radix would also accept legacy forms such as "10.1".
            self._tree.add(text if canonical else str(ipaddress.ip_network(text, strict=False)))
        except (ValueError, TypeError) as exc:
            if strict:
                raise ValueError(f"not an IP network: {cidr!r}") from exc
            return False
        self.size += 1
        return True

    def __contains__(self, ip: object) -> bool:
        if not isinstance(ip, str) or not self.size:
            return False
        try:
            # The tree parses with AI_NUMERICHOST: never a DNS query, ValueError on junk.
            return self._tree.search_best(ip) is not None
        except (ValueError, TypeError, OSError):
            return False

    def __len__(self) -> int:
        return self.size


class IpRanges:
    """All address lists. Build once (loading is slow), share between workers and engines."""

    def __init__(
        self,
        *,
        datacenter: Iterable[str] = (),
        vpn: Iterable[str] = (),
        tor: Iterable[str] = (),
        crawlers: Mapping[str, Iterable[str]] | None = None,
        allow: Iterable[str] = (),
        deny: Iterable[str] = (),
        extra: Mapping[str, Iterable[str]] | None = None,
        canonical: bool = False,
    ) -> None:
        """``canonical``: the datacenter, VPN, Tor and crawler entries are canonical CIDRs."""
        self.datacenter = NetworkList(datacenter, canonical=canonical)
        self.vpn = NetworkList(vpn, canonical=canonical)
        self.tor = NetworkList(tor, canonical=canonical)
        self.crawlers = {
            name: NetworkList(cidrs, canonical=canonical) for name, cidrs in (crawlers or {}).items()
        }
        self.allow = NetworkList(allow, strict=True)
        self.deny = NetworkList(deny, strict=True)
        self.extra = {name: NetworkList(cidrs, strict=True) for name, cidrs in (extra or {}).items()}

    def with_policy(self, policy: Policy) -> IpRanges:
        """A copy sharing the shipped trees, with the policy's allow, deny and extra lists.

        Raises ValueError for an extra-list entry that is not a network (the policy schema
        checks allow/deny itself).
        """
        copy = IpRanges.__new__(IpRanges)
        copy.datacenter, copy.vpn, copy.tor = self.datacenter, self.vpn, self.tor
        copy.crawlers = self.crawlers
        copy.allow = NetworkList(policy.allow.networks, strict=True)
        copy.deny = NetworkList(policy.deny.networks, strict=True)
        copy.extra = dict(self.extra)
        for name, cidrs in policy.reputation.extra_lists.items():
            copy.extra[name] = NetworkList(cidrs, strict=True)
        return copy

    def sizes(self) -> dict[str, int]:
        """Entries per list, for ``scrapewarden lists`` style reports."""
        out = {"datacenter": len(self.datacenter), "vpn": len(self.vpn), "tor": len(self.tor)}
        out.update({f"crawler:{name}": len(tree) for name, tree in self.crawlers.items()})
        out.update({"allow": len(self.allow), "deny": len(self.deny)})
        out.update({f"list:{name}": len(tree) for name, tree in self.extra.items()})
        return out


class IpReputation:
    """Per-request address checks with the policy's weights (``reputation`` section)."""

    def __init__(self, policy: Policy, ranges: IpRanges) -> None:
        self.ranges = ranges = ranges.with_policy(policy)
        weights = policy.reputation
        # One origin finding per address, the most specific list first: Tor exits and VPN
        # servers mostly sit in hosting networks too, and counting both would punish a person
        # on a VPN twice for one fact.
        self._origin = [
            (tree, name, weight, reason)
            for tree, name, weight, reason in (
                (ranges.tor, "reputation.tor", weights.tor, "address is a Tor exit"),
                (ranges.vpn, "reputation.vpn", weights.vpn, "address in a commercial VPN network"),
                (
                    ranges.datacenter,
                    "reputation.datacenter",
                    weights.datacenter,
                    "address in a hosting network",
                ),
            )
            if weight > 0 and len(tree)
        ]
        self._extra = [
            (tree, f"reputation.list:{name}", f"address on the operator list {name!r}")
            for name, tree in ranges.extra.items()
            if len(tree)
        ]
        self._extra_weight = weights.extra_weight

    def check(self, ip: str) -> list[Evidence]:
        """Evidence about where ``ip`` comes from. Never raises."""
        found: list[Evidence] = []
        for tree, name, weight, reason in self._origin:
            if ip in tree:
                found.append(Evidence(name, weight, reason, _ACTOR))
                break
        if self._extra_weight > 0:
            for tree, name, reason in self._extra:
                if ip in tree:
                    found.append(Evidence(name, self._extra_weight, reason, _ACTOR))
        return found

    def allowed(self, ip: str) -> bool:
        return ip in self.ranges.allow

    def denied(self, ip: str) -> bool:
        return ip in self.ranges.deny

    def in_crawler_range(self, ip: str, bot: str) -> bool:
        tree = self.ranges.crawlers.get(bot)
        return tree is not None and ip in tree

    def publishes_ranges(self, bot: str) -> bool:
        """Whether we hold published address ranges for this crawler."""
        tree = self.ranges.crawlers.get(bot)
        return tree is not None and len(tree) > 0
