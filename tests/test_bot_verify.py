"""Crawler verification: published ranges, forward-confirmed reverse DNS, the background queue."""

from __future__ import annotations

import threading

import pytest

from scrapewarden.bot_verify import BotVerifier, StaticResolver, SystemResolver, fcrdns
from scrapewarden.core.detectors.reputation import BotVerdicts
from scrapewarden.lists import load_ip_ranges

REAL = "192.0.2.66"  # outside the published ranges: only DNS can vouch for it
HOST = "crawl-192-0-2-66.googlebot.com"
TABLE = {
    REAL: [HOST],
    HOST: [REAL],
    # A spoofer controls its own reverse zone and writes a Google name into it, but Google's
    # zone does not point that name back at the spoofer's address.
    "198.51.100.9": ["crawl-66-249-66-1.googlebot.com"],
    "crawl-66-249-66-1.googlebot.com": ["66.249.66.1"],
    # Look-alike domains.
    "198.51.100.10": ["crawl.googlebot.com.evil.example"],
    "crawl.googlebot.com.evil.example": ["198.51.100.10"],
    "198.51.100.11": ["evilgooglebot.com"],
    "evilgooglebot.com": ["198.51.100.11"],
    # IPv6, and a trailing dot and capitals as real PTR answers may have.
    "2001:db8::66": ["Crawl6.GoogleBot.com."],
    "crawl6.googlebot.com": ["2001:db8:0:0::66"],
}


def verified(verifier: BotVerifier, ip: str, bot: str = "googlebot") -> bool | None:
    first = verifier.verdict(ip, bot)
    if first is not None:
        return first
    assert verifier.wait_idle()
    return verifier.verdict(ip, bot)


@pytest.fixture
def verifier() -> BotVerifier:
    v = BotVerifier(StaticResolver(TABLE), load_ip_ranges())
    yield v  # type: ignore[misc]
    v.close()


def test_it_is_the_engines_protocol(verifier: BotVerifier) -> None:
    bot_verdicts: BotVerdicts = verifier
    assert bot_verdicts.verdict("66.249.66.1", "googlebot") is True


def test_published_range_answers_at_once_without_dns() -> None:
    resolver = StaticResolver({})
    verifier = BotVerifier(resolver, load_ip_ranges())
    assert verifier.verdict("66.249.66.1", "googlebot") is True
    assert resolver.calls == 0


def test_real_crawler_is_verified_by_dns_in_the_background(verifier: BotVerifier) -> None:
    assert verifier.verdict(REAL, "googlebot") is None  # unknown yet, look-up queued
    assert verifier.wait_idle()
    assert verifier.verdict(REAL, "googlebot") is True
    assert verified(verifier, "2001:db8::66") is True


@pytest.mark.parametrize("ip", ["198.51.100.9", "198.51.100.10", "198.51.100.11", "203.0.113.1"])
def test_spoofed_crawlers_fail(verifier: BotVerifier, ip: str) -> None:
    assert verified(verifier, ip) is False


def test_wrong_crawler_domain_fails(verifier: BotVerifier) -> None:
    # A genuine Google host is not Bing.
    assert verified(verifier, REAL, "bingbot") is False


def test_range_only_crawlers() -> None:
    verifier = BotVerifier(StaticResolver({}), load_ip_ranges())
    assert verifier.verdict("203.0.113.1", "openai") is False  # OpenAI publishes ranges, no DNS names
    assert verifier.verdict("203.0.113.1", "unknown-bot") is None


def test_results_are_cached() -> None:
    resolver = StaticResolver(TABLE)
    verifier = BotVerifier(resolver)
    assert verifier.verify_now(REAL, "googlebot") is True
    calls = resolver.calls
    for _ in range(5):
        assert verifier.verdict(REAL, "googlebot") is True
    assert resolver.calls == calls


def test_results_expire() -> None:
    now = [1000.0]
    verifier = BotVerifier(StaticResolver(TABLE), ttl=60.0, clock=lambda: now[0])
    verifier.verify_now(REAL, "googlebot")
    assert verifier.verdict(REAL, "googlebot") is True
    now[0] += 61.0
    assert verifier.verdict(REAL, "googlebot") is None
    verifier.close()


class _Failing:
    def reverse(self, ip: str) -> list[str]:
        raise OSError("resolver down")

    def forward(self, hostname: str) -> list[str]:
        raise OSError("resolver down")


class _Blocking(StaticResolver):
    def __init__(self) -> None:
        super().__init__(TABLE)
        self.release = threading.Event()

    def reverse(self, ip: str) -> list[str]:
        self.release.wait(5.0)
        return super().reverse(ip)


def test_dns_failure_is_not_a_yes_and_is_retried_soon() -> None:
    now = [0.0]
    verifier = BotVerifier(_Failing(), ttl=86400.0, failure_ttl=30.0, clock=lambda: now[0])
    assert verifier.verify_now(REAL, "googlebot") is False
    now[0] += 31.0
    assert verifier.verdict(REAL, "googlebot") is None  # failure forgotten: asks again
    verifier.close()


def test_the_queue_is_bounded_and_verdict_never_blocks() -> None:
    resolver = _Blocking()
    verifier = BotVerifier(resolver, workers=1, max_queue=3)
    answers = [verifier.verdict(f"198.51.100.{i}", "googlebot") for i in range(1, 50)]
    assert answers == [None] * 49
    assert verifier.dropped >= 49 - 3 - 1  # at most the queue plus the one being worked on
    # The same address asked again while pending is not queued twice.
    dropped = verifier.dropped
    verifier.verdict("198.51.100.1", "googlebot")
    assert verifier.dropped == dropped
    resolver.release.set()
    assert verifier.wait_idle()
    verifier.close()


def test_fcrdns_function_directly() -> None:
    resolver = StaticResolver(TABLE)
    assert fcrdns(resolver, REAL, ["googlebot.com"])
    assert not fcrdns(resolver, REAL, ["search.msn.com"])
    assert not fcrdns(resolver, "203.0.113.5", ["googlebot.com"])


def test_system_resolver_forward_with_numeric_input() -> None:
    # Numeric input resolves without any DNS traffic (reverse look-ups would leave the host).
    resolver = SystemResolver()
    assert resolver.forward("127.0.0.1") == ["127.0.0.1"]
    assert resolver.forward("::1") == ["::1"]
