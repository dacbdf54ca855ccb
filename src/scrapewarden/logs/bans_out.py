"""Block lists from an analysis: nftables, ipset, nginx (``deny`` or ``geo``) and plain.

Addresses are aggregated into the smallest set of networks that covers *exactly* them
(``ipaddress.collapse_addresses``): a /24 appears only when all 256 of its addresses were judged,
so a block list never catches an address nobody judged.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Literal

BanFormat = Literal["nftables", "ipset", "nginx", "nginx-geo", "plain"]
FORMATS: tuple[str, ...] = ("nftables", "ipset", "nginx", "nginx-geo", "plain")
NAME = "scrapewarden"


def aggregate(addresses: Iterable[str]) -> tuple[list[str], list[str]]:
    """(IPv4 networks, IPv6 networks), collapsed. Unparseable entries are skipped."""
    v4: list[ipaddress.IPv4Network] = []
    v6: list[ipaddress.IPv6Network] = []
    for text in addresses:
        try:
            net = ipaddress.ip_network(text.strip(), strict=False)
        except ValueError:
            continue
        if isinstance(net, ipaddress.IPv4Network):
            v4.append(net)
        else:
            v6.append(net)
    return (
        [str(n) for n in ipaddress.collapse_addresses(v4)],
        [str(n) for n in ipaddress.collapse_addresses(v6)],
    )


def render(addresses: Iterable[str], fmt: str, *, comment: str = "") -> str:
    v4, v6 = aggregate(addresses)
    head = f"# {comment}\n" if comment else ""
    if fmt == "plain":
        return head + "".join(f"{n}\n" for n in v4 + v6)
    if fmt == "nginx":
        return head + "".join(f"deny {n};\n" for n in v4 + v6)
    if fmt == "nginx-geo":
        body = "".join(f"    {n} 1;\n" for n in v4 + v6)
        return (
            head
            + "# In http {}: include this file, then in a server or location:\n"
            + f"#     if (${NAME}_banned) {{ return 403; }}\n"
            + f"geo ${NAME}_banned {{\n    default 0;\n{body}}}\n"
        )
    if fmt == "ipset":
        lines = [
            f"create {NAME}-v4 hash:net family inet -exist",
            f"create {NAME}-v6 hash:net family inet6 -exist",
        ]
        lines += [f"add {NAME}-v4 {n} -exist" for n in v4]
        lines += [f"add {NAME}-v6 {n} -exist" for n in v6]
        return head + "\n".join(lines) + "\n"
    if fmt == "nftables":

        def elements(nets: list[str]) -> str:
            # nft refuses an empty element list: leave the line out instead.
            return f"        elements = {{ {', '.join(nets)} }}\n" if nets else ""

        return (
            head
            + f"table inet {NAME} {{\n"
            + "    set banned_v4 {\n        type ipv4_addr\n        flags interval\n"
            + elements(v4)
            + "    }\n"
            + "    set banned_v6 {\n        type ipv6_addr\n        flags interval\n"
            + elements(v6)
            + "    }\n"
            + "    chain input {\n        type filter hook input priority 0; policy accept;\n"
            + "        ip saddr @banned_v4 drop\n        ip6 saddr @banned_v6 drop\n    }\n}\n"
        )
    raise ValueError(f"unknown ban list format {fmt!r} (choose from {', '.join(FORMATS)})")
