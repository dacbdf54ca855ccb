"""robots.txt as Google reads it (RFC 9309): the most specific group, the longest rule wins.

Written for the good bot, which must never fetch a disallowed path. Semantics:

* the group whose user-agent token matches the crawler's product token (case-insensitive)
  applies, else the ``*`` group; several groups for the same token are merged;
* ``*`` in a rule matches any characters and a trailing ``$`` anchors the end;
* the longest matching rule wins, and ``Allow`` wins a tie; an empty ``Disallow`` allows all;
* ``/robots.txt`` itself is always allowed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field


@dataclass
class Robots:
    rules: list[tuple[bool, str, re.Pattern[str]]] = field(default_factory=list)
    """(allow, pattern, compiled) for the crawler's group."""
    sitemaps: list[str] = field(default_factory=list)
    disallow_all: bool = False
    """Set when robots.txt could not be read for a server error: crawl nothing (RFC 9309)."""

    def allowed(self, path: str) -> bool:
        """May the crawler fetch ``path`` (path with optional query)?"""
        if path == "/robots.txt":
            return True
        if self.disallow_all:
            return False
        best: tuple[int, bool] | None = None
        for allow, pattern, compiled in self.rules:
            if compiled.match(path):
                key = (len(pattern), allow)
                if best is None or key > best:
                    best = key
        return True if best is None else best[1]


def _compile(pattern: str) -> re.Pattern[str]:
    anchored = pattern.endswith("$")
    body = pattern[:-1] if anchored else pattern
    regex = ".*".join(re.escape(part) for part in body.split("*"))
    return re.compile(regex + ("$" if anchored else ""))


def parse_robots(text: str, product: str) -> Robots:
    """The rules of ``text`` that apply to the crawler called ``product`` (e.g. ``googlebot``)."""
    product = product.lower()
    groups: dict[str, list[tuple[bool, str]]] = {}
    sitemaps: list[str] = []
    agents: list[str] = []
    in_rules = False
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if ":" not in line:
            continue
        key, value = (part.strip() for part in line.split(":", 1))
        key = key.lower()
        if key == "user-agent":
            if in_rules:
                agents, in_rules = [], False
            agents.append(value.lower())
            for agent in agents:
                groups.setdefault(agent, [])
        elif key in ("allow", "disallow"):
            in_rules = True
            if value:  # "Disallow:" with nothing after it allows everything
                for agent in agents:
                    groups[agent].append((key == "allow", value))
        elif key == "sitemap":
            sitemaps.append(value)
    chosen = groups.get(product) if product != "*" else None
    if chosen is None:
        chosen = groups.get("*", [])
    return Robots([(allow, p, _compile(p)) for allow, p in chosen], sitemaps)
