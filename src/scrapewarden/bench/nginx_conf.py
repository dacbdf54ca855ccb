"""nginx configurations for the proxy benchmark, rendered from the templates in ``nginx/``.

Every configuration is the same skeleton (``nginx/main.conf``: one worker, no access log,
temporary files and the error log in the run's own folder) around one site template:

- ``upstream.conf``: the upstream, the same 1 KB JSON document for every path;
- ``limit_req.conf``: nginx as a reverse proxy with a per-client ``limit_req`` and a ``geo``
  block list of 10,000 networks, what a site would use instead of scrapewarden;
- ``auth_request.conf``: nginx as a reverse proxy asking ``scrapewarden authz`` about every
  request.

Placeholders are ``@NAME@`` (nginx itself uses ``$`` and braces); rendering fails if one is
left unfilled, so a template and its caller cannot drift apart silently.
"""

from __future__ import annotations

import bisect
import ipaddress
import json
import random
import re
from collections.abc import Iterable, Mapping
from importlib import resources

from .traffic import random_public_ipv4

BODY_BYTES = 1024
BLOCKED_NETWORKS = 10_000
BLOCK_LIST_SEED = 20240612
BLOCKED_PREFIXES = (16, 18, 20, 22, 23, 24, 24, 24, 24, 24)
"""Prefix lengths of the blocked networks, drawn uniformly from this list (mostly /24s, as in
published block lists of abusive hosts)."""
LIMIT_RATE_PER_S = 1000
LIMIT_BURST = 1000
"""Per client: far above what any simulated visitor sends, so limit_req counts but never refuses."""

_PLACEHOLDER = re.compile(r"@[A-Z_]+@")
_UNSAFE_IN_RETURN = frozenset("'\\$")
"""Characters that would end or be interpolated in an nginx single-quoted ``return`` text."""


def template(name: str) -> str:
    return (resources.files(__package__) / "nginx" / name).read_text(encoding="utf-8")


def render(site: str, values: Mapping[str, object]) -> str:
    """The full configuration: ``main.conf`` around the site template ``site`` (e.g.
    ``"upstream.conf"``), with every ``@NAME@`` replaced by ``values[NAME]``."""
    text = template("main.conf").replace("@SITE@", template(site).rstrip("\n"))
    for key, value in values.items():
        text = text.replace(f"@{key}@", str(value))
    left = sorted(set(_PLACEHOLDER.findall(text)))
    if left:
        raise ValueError(f"{site}: no value for {', '.join(left)}")
    return text


def json_body(size: int = BODY_BYTES) -> str:
    """A profile-like JSON document of exactly ``size`` bytes (ASCII), safe inside nginx quotes."""
    document: dict[str, object] = {
        "id": 4242,
        "name": "Ada Okafor",
        "city": "Lisbon",
        "joined": "2021-03-14",
        "bio": "",
        "links": [f"/users/{n}" for n in range(4243, 4251)],
    }
    skeleton = json.dumps(document, separators=(",", ":"))
    if len(skeleton) > size:
        raise ValueError(f"a body of {size} bytes is too small for the document")
    filler = "Enjoys long walks and short benchmarks. "
    document["bio"] = (filler * (size // len(filler) + 1))[: size - len(skeleton)]
    text = json.dumps(document, separators=(",", ":"))
    assert len(text) == size and not _UNSAFE_IN_RETURN & set(text)
    return text


def block_list(
    avoid: Iterable[str], count: int = BLOCKED_NETWORKS, seed: int = BLOCK_LIST_SEED
) -> list[ipaddress.IPv4Network]:
    """``count`` random public networks, none overlapping another, none holding an ``avoid``
    address (the simulated visitors must pass the block list, as real people would). Sorted."""
    rng = random.Random(seed)
    visitors = sorted(int(ipaddress.IPv4Address(address)) for address in avoid)
    starts: list[int] = []
    ends: list[int] = []
    # Each draw fails only when it hits a visitor or an earlier network (a few percent of draws):
    # twenty draws per network is far more than ever needed, and keeps the loop bounded.
    for _ in range(count * 20):
        if len(starts) == count:
            break
        address = random_public_ipv4(rng)
        network = ipaddress.IPv4Network(f"{address}/{rng.choice(BLOCKED_PREFIXES)}", strict=False)
        start, end = int(network.network_address), int(network.broadcast_address)
        visitor = bisect.bisect_left(visitors, start)
        if visitor < len(visitors) and visitors[visitor] <= end:
            continue
        slot = bisect.bisect_left(starts, start)
        if slot > 0 and ends[slot - 1] >= start:
            continue
        if slot < len(starts) and starts[slot] <= end:
            continue
        starts.insert(slot, start)
        ends.insert(slot, end)
    if len(starts) < count:
        raise RuntimeError(f"drew only {len(starts)} of {count} blocked networks")
    return [
        ipaddress.IPv4Network((start, 32 - (end - start + 1).bit_length() + 1))
        for start, end in zip(starts, ends, strict=True)
    ]


def geo_entries(networks: Iterable[ipaddress.IPv4Network]) -> str:
    """The body of a ``geo`` block: one ``CIDR 1;`` line per blocked network."""
    return "".join(f"{network} 1;\n" for network in networks)
