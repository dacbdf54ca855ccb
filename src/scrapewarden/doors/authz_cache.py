"""Short-lived reuse of ALLOW decisions for static assets, so a page with thirty images costs
a handful of full decisions instead of thirty-one.

What is cached: only ALLOW decisions, only for GET/HEAD requests whose path is a static asset by
the policy (``client.asset_prefixes`` / ``asset_suffixes``), that are neither a protected record
nor a trap path. The key is the client address plus the most specific identity the request shows
(account, else session, else client fingerprint), so a cached answer is only ever reused for the
same client software at the same address.

For how long: ``seconds`` (5 by default) and at most ``uses`` reuses (8 by default); after
either, the next asset is decided in full again, which also refreshes the engine's counters.
Assets therefore still count for the engine — the first one of each burst always, then every
``uses``-th — and the "loads no assets" detectors, which only ask whether a client loads assets
at all, see every browser that does.

Why it cannot be abused: refusals are never cached, and any refusal for an address drops that
address's cached allows, so a client that trips a detector on a page cannot keep loading assets
on credit. Protected records and pages are never served from the cache, so scraping cannot use
it. The cache is bounded (oldest addresses go first), so a flood of addresses costs memory only
up to ``max_addresses``.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from ..core.decision import Action, Decision

DEFAULT_SECONDS = 5.0
DEFAULT_USES = 8
DEFAULT_MAX_ADDRESSES = 50_000
MAX_IDENTITIES_PER_ADDRESS = 16
"""One address behind a NAT has several browsers; more than this many is not worth keeping."""


@dataclass(slots=True)
class _Entry:
    decision: Decision
    expires: float
    uses_left: int


class AssetDecisionCache:
    def __init__(
        self,
        *,
        seconds: float = DEFAULT_SECONDS,
        uses: int = DEFAULT_USES,
        max_addresses: int = DEFAULT_MAX_ADDRESSES,
    ) -> None:
        self.seconds = seconds
        self.uses = uses
        self.max_addresses = max_addresses
        self._by_ip: OrderedDict[str, dict[str, _Entry]] = OrderedDict()
        self.hits = 0

    @property
    def enabled(self) -> bool:
        return self.seconds > 0 and self.uses > 0 and self.max_addresses > 0

    def get(self, ip: str, identity: str, now: float) -> Decision | None:
        """A cached ALLOW for this client, or None (decide in full, then :meth:`put`)."""
        entries = self._by_ip.get(ip)
        if entries is None:
            return None
        entry = entries.get(identity)
        if entry is None:
            return None
        if now >= entry.expires or entry.uses_left <= 0:
            del entries[identity]
            if not entries:
                del self._by_ip[ip]
            return None
        entry.uses_left -= 1
        self.hits += 1
        return entry.decision

    def put(self, ip: str, identity: str, decision: Decision, now: float) -> None:
        """Remember an allow; a refusal instead forgets everything cached for the address."""
        # In observe mode a would-be refusal is let through but still not cached: it must be
        # decided (and logged) in full every time, like in enforce mode.
        if decision.action is not Action.ALLOW:
            self.forget(ip)
            return
        entries = self._by_ip.get(ip)
        if entries is None:
            if len(self._by_ip) >= self.max_addresses:
                self._by_ip.popitem(last=False)
            entries = self._by_ip[ip] = {}
        else:
            self._by_ip.move_to_end(ip)
            if identity not in entries and len(entries) >= MAX_IDENTITIES_PER_ADDRESS:
                entries.pop(next(iter(entries)))
        entries[identity] = _Entry(decision, now + self.seconds, self.uses)

    def forget(self, ip: str) -> None:
        self._by_ip.pop(ip, None)

    def __len__(self) -> int:
        return sum(len(entries) for entries in self._by_ip.values())
