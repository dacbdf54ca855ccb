"""Known bot user agents, compiled for speed.

The shipped lists hold about 1,650 patterns (crawler-user-agents' regular expressions plus
ai.robots.txt's AI crawler tokens). One regular expression alternation over all of them costs
hundreds of microseconds per user agent in Python's ``re``, because every alternative is tried
at every position. Nearly all of them are plain text, though, or expand to a handful of plain
texts (``[wW]get``, ``Ahrefs(Bot|SiteAudit)``). Those become one character trie rendered as a
regular expression, which scans a user agent in a few microseconds; anchored texts become
``str.startswith``/``str.endswith`` tuples; only the few true regular expressions left over are
matched as such.

Pure: built from already loaded data (see :mod:`scrapewarden.lists`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Literal, NamedTuple

Kind = Literal["ai", "headless", "bot"]

# Stronger kinds win when one user agent matches several: an AI crawler is a bot too, but the
# operator weighs AI crawlers separately.
_RANK: dict[Kind, int] = {"ai": 3, "headless": 2, "bot": 1}

HEADLESS_MARKERS: tuple[str, ...] = (
    "HeadlessChrome",
    "Headless",
    "PhantomJS",
    "SlimerJS",
    "jsdom/",
    "HtmlUnit",
    "Nightmare",
    "Zombie.js",
    "CasperJS",
    "Selenium",
    "selenium",
    "WebDriver",
    "webdriver",
    "Puppeteer",
    "puppeteer",
    "Playwright",
    "playwright",
    "Lightpanda",
)
"""Automation markers that scraping setups leave in the user agent unless told otherwise.

``Electron/`` is deliberately absent: desktop apps built on Electron (Obsidian, Slack, Discord)
send it while a person uses them, and the intoli traffic sample contains such a user agent.
"""

# Words crawler authors put in their user agents, for crawlers no list knows yet. Matched
# against the lower-cased user agent. "cubot" is a phone brand; "http(s)://" is the
# convention for a crawler's contact page and appears in no browser's user agent. Tested
# against ~1,800 browser user agents (no hit) and uap-core's held-out crawler examples.
GENERIC_BOT = re.compile(r"(?<!cu)bot\b|crawl|spider|scraper|https?://")

_MAX_VARIANTS = 64
_SPECIAL = set(".*+?{}")


class UaMatch(NamedTuple):
    kind: Kind
    text: str
    """The part of the user agent that matched."""


def kind_for_tags(tags: Sequence[str]) -> Kind:
    """Map crawler-user-agents tags to a kind."""
    if "ai-crawler" in tags:
        return "ai"
    if "browser-automation" in tags:
        return "headless"
    return "bot"


def _read_class(pattern: str, i: int) -> tuple[list[str], int] | None:
    """``[abc]`` at ``pattern[i]`` -> its characters and the index after it; None if not plain."""
    chars: list[str] = []
    i += 1
    while i < len(pattern):
        ch = pattern[i]
        if ch == "]" and chars:
            return chars, i + 1
        if ch == "\\" and i + 1 < len(pattern) and not pattern[i + 1].isalnum():
            chars.append(pattern[i + 1])
            i += 2
            continue
        if ch in "^-[\\":
            return None
        chars.append(ch)
        i += 1
    return None


def _split_top(pattern: str, sep: str = "|") -> list[str]:
    """Split on ``sep`` outside brackets and groups."""
    parts, depth, start, i = [], 0, 0, 0
    in_class = False
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            i += 2
            continue
        if in_class:
            in_class = ch != "]"
        elif ch == "[":
            in_class = True
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == sep and depth == 0:
            parts.append(pattern[start:i])
            start = i + 1
        i += 1
    parts.append(pattern[start:])
    return parts


def literal_variants(pattern: str) -> list[tuple[str, bool, bool]] | None:
    """The plain texts a simple regular expression matches, as (text, at_start, at_end).

    Handles literals, escaped punctuation, ``[abc]`` classes, ``(a|b)`` groups of plain texts,
    top-level ``a|b``, a leading ``^`` and a trailing ``$``. Anything else returns None and the
    pattern stays a regular expression.
    """
    alternatives = _split_top(pattern)
    if len(alternatives) > 1:
        out: list[tuple[str, bool, bool]] = []
        for alternative in alternatives:
            sub = literal_variants(alternative)
            if sub is None:
                return None
            out += sub
        return out if len(out) <= _MAX_VARIANTS else None
    at_start = pattern.startswith("^")
    at_end = pattern.endswith("$") and not pattern.endswith("\\$")
    body = pattern[1 if at_start else 0 : len(pattern) - 1 if at_end else len(pattern)]
    variants = [""]
    i = 0
    while i < len(body):
        ch = body[i]
        choices: list[str]
        if ch == "\\":
            if i + 1 >= len(body) or body[i + 1].isalnum():
                return None
            choices, i = [body[i + 1]], i + 2
        elif ch == "[":
            read = _read_class(body, i)
            if read is None:
                return None
            choices, i = read
        elif ch == "(":
            end = body.find(")", i)
            inner = body[i + 1 : end] if end != -1 else ""
            if inner.startswith("?:"):
                inner = inner[2:]
            if not inner or any(c in inner for c in "()[]^$\\") or any(c in _SPECIAL for c in inner):
                return None
            choices, i = inner.split("|"), end + 1
        elif ch in _SPECIAL or ch in "|)]^$":
            return None
        else:
            choices, i = [ch], i + 1
        variants = [v + c for v in variants for c in choices]
        if len(variants) > _MAX_VARIANTS:
            return None
    if any(not v for v in variants):
        return None
    return [(v, at_start, at_end) for v in variants]


def trie_regex(words: Iterable[str]) -> str:
    """A regular expression matching any of ``words``, factored into a character trie.

    Greedy optional groups make the longest word at a position win, like a plain alternation
    ordered longest first would.
    """
    trie: dict[str, dict[str, object]] = {}
    for word in words:
        node = trie
        for ch in word:
            node = node.setdefault(ch, {})  # type: ignore[assignment]
        node[""] = {}

    def emit(node: dict[str, dict[str, object]]) -> str:
        branches = [re.escape(ch) + emit(child) for ch, child in sorted(node.items()) if ch]  # type: ignore[arg-type]
        if not branches:
            return ""
        optional = "" in node
        if len(branches) == 1 and not optional:
            return branches[0]
        return "(?:" + "|".join(branches) + ")" + ("?" if optional else "")

    return emit(trie)


class BotPatterns:
    """All known bot user-agent patterns, with a fast :meth:`classify`."""

    def __init__(
        self,
        patterns: Iterable[tuple[str, Sequence[str]]],
        ai_tokens: Iterable[str] = (),
        headless_markers: Iterable[str] = HEADLESS_MARKERS,
        *,
        generic: bool = True,
    ) -> None:
        """``patterns``: (case-sensitive regular expression, crawler-user-agents tags) pairs.

        ``ai_tokens``: AI crawler names, matched as whole words so that short generic tokens
        (``Code``, ``Spider``) do not fire inside longer words. ``generic``: also flag user
        agents that only say "bot", "crawler", "spider" or carry a URL (see ``GENERIC_BOT``).
        """
        self._generic = GENERIC_BOT if generic else None
        self._literal: dict[str, Kind] = {}
        self._word: set[str] = set()
        prefixes: dict[str, Kind] = {}
        suffixes: dict[str, Kind] = {}
        exact: dict[str, Kind] = {}
        leftovers: list[tuple[str, Kind]] = []
        self.size = 0

        def add(table: dict[str, Kind], text: str, kind: Kind) -> None:
            old = table.get(text)
            if old is None or _RANK[kind] > _RANK[old]:
                table[text] = kind

        for pattern, tags in patterns:
            self.size += 1
            kind = kind_for_tags(tags)
            variants = literal_variants(pattern)
            if variants is None:
                re.compile(pattern)  # a broken pattern must fail here, at load, not per request
                leftovers.append((pattern, kind))
                continue
            for text, at_start, at_end in variants:
                if at_start:
                    add(exact if at_end else prefixes, text, kind)
                else:
                    add(suffixes if at_end else self._literal, text, kind)
        for token in ai_tokens:
            self.size += 1
            add(self._literal, token, "ai")
            self._word.add(token)
        for marker in headless_markers:
            self.size += 1
            add(self._literal, marker, "headless")

        self._trie = re.compile(trie_regex(self._literal)) if self._literal else None
        self._prefixes, self._prefix_tuple = prefixes, tuple(prefixes)
        self._suffixes, self._suffix_tuple = suffixes, tuple(suffixes)
        self._exact = exact
        # Searched one by one: each starts with plain text that ``re`` can skip to quickly, an
        # optimisation that a combined alternation would lose (measured: 3 µs against 9 µs).
        self._leftovers = [(re.compile(p), kind) for p, kind in leftovers]

    def _is_word(self, ua: str, start: int, end: int) -> bool:
        before = ua[start - 1] if start > 0 else " "
        after = ua[end] if end < len(ua) else " "
        return not before.isalnum() and not after.isalpha()

    def classify(self, ua: str) -> UaMatch | None:
        """The strongest kind of bot ``ua`` matches, or None. Never raises."""
        best: UaMatch | None = None

        def offer(kind: Kind, text: str) -> None:
            nonlocal best
            if best is None or _RANK[kind] > _RANK[best.kind]:
                best = UaMatch(kind, text)

        if self._trie is not None:
            for m in self._trie.finditer(ua):
                text = m.group()
                if text in self._word and not self._is_word(ua, m.start(), m.end()):
                    continue
                offer(self._literal[text], text)
                if best is not None and best.kind == "ai":
                    return best
        if self._prefix_tuple and ua.startswith(self._prefix_tuple):
            for text, kind in self._prefixes.items():
                if ua.startswith(text):
                    offer(kind, text)
        if self._suffix_tuple and ua.endswith(self._suffix_tuple):
            for text, kind in self._suffixes.items():
                if ua.endswith(text):
                    offer(kind, text)
        exact_kind = self._exact.get(ua)
        if exact_kind is not None:
            offer(exact_kind, ua)
        for regex, kind in self._leftovers:
            found = regex.search(ua)
            if found is not None:
                offer(kind, found.group())
        if best is None and self._generic is not None:
            found = self._generic.search(ua.lower())
            if found is not None:
                best = UaMatch("bot", found.group())
        return best
