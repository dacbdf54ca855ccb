"""The bot pattern compiler must match exactly what the upstream regular expressions match."""

from __future__ import annotations

import re

from conftest import browser_user_agents, crawler_entries, crawler_instances, uap_spiders
from hypothesis import given
from hypothesis import strategies as st

from scrapewarden.core.detectors.ua_patterns import BotPatterns, literal_variants, trie_regex
from scrapewarden.lists import load_bot_patterns


def test_literal_variants_expand_simple_patterns() -> None:
    assert literal_variants(r"Googlebot\/") == [("Googlebot/", False, False)]
    assert sorted(v for v, _, _ in literal_variants("[wW]get") or []) == ["Wget", "wget"]
    assert sorted(v for v, _, _ in literal_variants("Ahrefs(Bot|SiteAudit)") or []) == [
        "AhrefsBot",
        "AhrefsSiteAudit",
    ]
    assert literal_variants("^curl") == [("curl", True, False)]
    assert literal_variants("SSL Labs$") == [("SSL Labs", False, True)]
    assert sorted(literal_variants("Netumo|netumo") or []) == [
        ("Netumo", False, False),
        ("netumo", False, False),
    ]


def test_literal_variants_refuse_real_regexes() -> None:
    for pattern in [
        r"BlogTraffic\/\d\.\d+",
        r"Spider[\s\S]*spider\.com",
        "AdsBot-Google([^-]|$)",
        "(^| )sentry",
        "a.b",
    ]:
        assert literal_variants(pattern) is None, pattern


@given(
    st.lists(st.text(alphabet="abcAB/.-( ", min_size=1, max_size=6), min_size=1, max_size=30),
    st.text(max_size=40),
)
def test_trie_regex_finds_the_same_words_as_an_alternation(words: list[str], text: str) -> None:
    plain = re.compile("|".join(re.escape(w) for w in sorted(set(words), key=len, reverse=True)))
    trie = re.compile(trie_regex(words))
    assert bool(trie.search(text)) == bool(plain.search(text))
    for word in words:
        assert trie.search("xx" + word + "yy") is not None


def test_compiled_patterns_agree_with_upstream_regexes() -> None:
    # Without extras (AI tokens, headless markers, generic words), the compiled form must say
    # "bot" exactly when one of the upstream expressions matches, on bots and browsers alike.
    entries = crawler_entries()
    patterns = BotPatterns(((e["pattern"], e.get("tags", [])) for e in entries), (), (), generic=False)  # type: ignore[misc]
    upstream = [re.compile(e["pattern"]) for e in entries]  # type: ignore[call-overload]
    for ua in crawler_instances() + browser_user_agents():
        expected = any(r.search(ua) for r in upstream)
        assert (patterns.classify(ua) is not None) == expected, ua


def test_kinds() -> None:
    patterns = load_bot_patterns()
    assert patterns.classify("Mozilla/5.0 (compatible; GPTBot/1.2; +https://openai.com/gptbot)").kind == "ai"  # type: ignore[union-attr]
    assert (
        patterns.classify("Mozilla/5.0 (X11; Linux x86_64) HeadlessChrome/120.0.0.0 Safari/537.36").kind
        == "headless"
    )  # type: ignore[union-attr]
    assert patterns.classify("python-requests/2.31.0").kind == "bot"  # type: ignore[union-attr]
    # AI tokens are whole words: "Code" and "Spider" inside other words do not count.
    assert patterns.classify("Mozilla/5.0 (Windows NT 10.0) Encoder/1.0") is None
    assert patterns.classify("") is None


def test_held_out_crawlers_from_uap_core() -> None:
    # uap-core's crawler examples were not used to build the lists: a fair generalisation check.
    spiders = uap_spiders()
    patterns = load_bot_patterns()
    rate = sum(1 for ua in spiders if patterns.classify(ua)) / len(spiders)
    print(f"uap-core held-out crawler detection: {rate:.1%} of {len(spiders)}")
    assert rate >= 0.8
