"""Bans in force, checked on every request, and the escalation rule for repeat offenders."""

from __future__ import annotations

import ipaddress

import radix

from .policy import BanPolicy

BAN_KINDS = ("ip", "network", "account", "fingerprint", "session")


def ban_ttl(policy: BanPolicy, prior_offences: int) -> float:
    """Ban length for an actor already banned ``prior_offences`` times (fail2ban-style increment)."""
    ttl = policy.ttl_seconds * policy.factor ** max(0, prior_offences)
    return float(min(ttl, policy.max_ttl_seconds))


class BanTable:
    """Active bans by kind. Networks sit in a radix tree so a lookup is one longest-prefix match."""

    def __init__(self) -> None:
        self._exact: dict[str, dict[str, float | None]] = {k: {} for k in BAN_KINDS if k != "network"}
        self._networks: dict[str, float | None] = {}
        self._tree = radix.Radix()

    def add(self, kind: str, value: str, expires: float | None) -> None:
        if kind == "network":
            cidr = str(ipaddress.ip_network(value, strict=False))
            self._networks[cidr] = expires
            self._tree.add(cidr).data["expires"] = expires
        else:
            self._exact[kind][value] = expires

    def remove(self, kind: str, value: str) -> bool:
        if kind == "network":
            cidr = str(ipaddress.ip_network(value, strict=False))
            if self._networks.pop(cidr, "missing") == "missing":
                return False
            self._tree.delete(cidr)
            return True
        return self._exact[kind].pop(value, "missing") != "missing"

    def clear(self) -> None:
        self.__init__()  # type: ignore[misc]

    def holds(self, kind: str) -> bool:
        """Whether any ban of this kind is in the table (expired ones included until matched)."""
        return bool(self._networks) if kind == "network" else bool(self._exact[kind])

    def __len__(self) -> int:
        return len(self._networks) + sum(len(v) for v in self._exact.values())

    def match(
        self,
        now: float,
        *,
        ip: str,
        account: str | None,
        session: str | None,
        fingerprint: str,
    ) -> str | None:
        """The key (``kind:value``) of an active ban covering this request, or None."""
        found = self._active("ip", ip, now)
        if found:
            return found
        if self._networks:
            try:
                node = self._tree.search_best(ip)
            except (ValueError, TypeError):
                node = None
            if node is not None:
                expires = node.data.get("expires")
                if expires is None or expires > now:
                    return f"network:{node.prefix}"
        if account is not None and (found := self._active("account", account, now)):
            return found
        if session is not None and (found := self._active("session", session, now)):
            return found
        return self._active("fingerprint", fingerprint, now)

    def _active(self, kind: str, value: str, now: float) -> str | None:
        table = self._exact[kind]
        if value in table:
            expires = table[value]
            if expires is None or expires > now:
                return f"{kind}:{value}"
            del table[value]
        return None
