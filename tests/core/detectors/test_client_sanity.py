"""Client sanity: bots, automation and fake browsers flagged; real browsers left alone."""

from __future__ import annotations

import re

import pytest
from conftest import browser_user_agents, crawler_instances, facts_for, scraper_requests
from hypothesis import given, settings
from hypothesis import strategies as st

from scrapewarden.core.detectors.client import ClientSanity
from scrapewarden.core.facts import RequestFacts
from scrapewarden.core.policy import Policy
from scrapewarden.lists import client_sanity, load_bot_patterns

WEBKIT = "AppleWebKit/537.36 (KHTML, like Gecko)"
CHROME_UA = f"Mozilla/5.0 (Windows NT 10.0; Win64; x64) {WEBKIT} Chrome/131.0.0.0 Safari/537.36"
FIREFOX_UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"
SAFARI_UA = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.1 Safari/605.1.15"
)
HTML_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


def _major(ua: str, token: str) -> int:
    m = re.search(re.escape(token) + r"(\d+)", ua)
    return int(m.group(1)) if m else 0


def _platform(ua: str) -> str:
    for marker, value in [("Windows", "Windows"), ("Android", "Android"), ("CrOS", "Chrome OS")]:
        if marker in ua:
            return f'"{value}"'
    return '"macOS"' if "Macintosh" in ua else '"Linux"'


def browser_headers(ua: str, host: str = "example.org") -> list[tuple[str, str]]:
    """A top-level navigation as the browser family of ``ua`` sends it over HTTP/1.1 (HTTPS).

    Orders and header sets follow what Chromium, Firefox and Safari send; older versions lack
    the headers they did not have yet (client hints from Chromium 89, Sec-Fetch from Chromium
    76, Firefox 90, Safari 16.4).
    """
    ios = "iPhone" in ua or "iPad" in ua
    chrome = _major(ua, "Chrome/")
    if chrome and not ios:
        headers = [("Host", host), ("Connection", "keep-alive")]
        if chrome >= 89:
            mobile = "?1" if "Mobile" in ua else "?0"
            brands = f'"Chromium";v="{chrome}", "Google Chrome";v="{chrome}", "Not_A Brand";v="24"'
            headers += [
                ("sec-ch-ua", brands),
                ("sec-ch-ua-mobile", mobile),
                ("sec-ch-ua-platform", _platform(ua)),
            ]
        headers += [("Upgrade-Insecure-Requests", "1"), ("User-Agent", ua), ("Accept", HTML_ACCEPT)]
        if chrome >= 76:
            headers += [("Sec-Fetch-Site", "none"), ("Sec-Fetch-Mode", "navigate"), ("Sec-Fetch-User", "?1")]
            headers += [("Sec-Fetch-Dest", "document")]
        return [
            *headers,
            ("Accept-Encoding", "gzip, deflate, br, zstd"),
            ("Accept-Language", "en-US,en;q=0.9"),
        ]
    firefox = _major(ua, "Firefox/")
    if firefox and not ios:
        headers = [
            ("Host", host),
            ("User-Agent", ua),
            ("Accept", HTML_ACCEPT),
            ("Accept-Language", "en-US,en;q=0.5"),
        ]
        headers += [("Accept-Encoding", "gzip, deflate, br, zstd"), ("Connection", "keep-alive")]
        headers += [("Upgrade-Insecure-Requests", "1")]
        if firefox >= 90:
            headers += [
                ("Sec-Fetch-Dest", "document"),
                ("Sec-Fetch-Mode", "navigate"),
                ("Sec-Fetch-Site", "none"),
            ]
            headers += [("Sec-Fetch-User", "?1")]
        return headers
    # Safari and every iOS browser (all WebKit).
    version = _major(ua, "Version/") or _major(ua, " OS ")
    headers = [("Host", host), ("Accept", HTML_ACCEPT)]
    if version >= 17:
        headers += [("Sec-Fetch-Site", "none"), ("Sec-Fetch-Dest", "document")]
    headers += [("Accept-Language", "en-GB,en;q=0.9")]
    if version >= 17:
        headers += [("Sec-Fetch-Mode", "navigate")]
    return [
        *headers,
        ("User-Agent", ua),
        ("Accept-Encoding", "gzip, deflate, br"),
        ("Connection", "keep-alive"),
    ]


@pytest.fixture(scope="module")
def sanity() -> ClientSanity:
    return client_sanity(Policy())


def detectors(sanity: ClientSanity, facts: RequestFacts) -> set[str]:
    return {e.detector for e in sanity.check(facts)}


# -- rates on the reference sets ------------------------------------------------------------


def test_known_crawler_instances_are_flagged(sanity: ClientSanity) -> None:
    # crawler-user-agents' own examples: the lists are built from the same source, so this is a
    # consistency check (held-out generalisation is in test_ua_patterns).
    instances = crawler_instances()
    hits = sum(1 for ua in instances if sanity.check(facts_for([("User-Agent", ua)])))
    rate = hits / len(instances)
    print(f"crawler-user-agents instances flagged: {rate:.2%} of {len(instances)}")
    assert rate >= 0.95


def test_real_browsers_with_real_headers_are_not_flagged(sanity: ClientSanity) -> None:
    uas = browser_user_agents()
    flagged = []
    for ua in uas:
        evidence = sanity.check(facts_for(browser_headers(ua), scheme="https"))
        if evidence:
            flagged.append((ua, [e.reason for e in evidence]))
    rate = len(flagged) / len(uas)
    print(f"browser false positives: {rate:.2%} of {len(uas)}")
    for ua, reasons in flagged[:10]:
        print("  ", ua, reasons)
    assert rate <= 0.005


def test_browser_user_agents_alone_are_not_bots(sanity: ClientSanity) -> None:
    # The user-agent-only path (e.g. a log line): no header checks, no bot verdicts.
    assert [ua for ua in browser_user_agents() if sanity.check(facts_for([("User-Agent", ua)]))] == []


# -- the recorded scraping clients ----------------------------------------------------------

EXPECTED = {
    "curl": "client.bot_ua",
    "wget-mirror": "client.bot_ua",
    "wget2-mirror": "client.bot_ua",
    "httrack": "client.bot_ua",
    "scrapy-fetch": "client.ai_crawler",  # ai.robots.txt lists Scrapy as an AI data scraper
    "curl_cffi-chrome": "client.header_order",
    "python-urllib": "client.bot_ua",
    "mechanicalsoup": "client.bot_ua",
    "gallery-dl-generic": "client.inconsistent_browser",
    "chromium-headless-cli": "client.headless",
    "playwright-py-system-chromium": "client.headless",
}


def test_every_recorded_scraping_client_is_flagged_for_the_right_reason(sanity: ClientSanity) -> None:
    seen = set()
    for record in scraper_requests():
        client = str(record["client"])
        facts = facts_for([tuple(pair) for pair in record["headers"]], method=str(record["method"]))  # type: ignore[attr-defined,misc]
        found = detectors(sanity, facts)
        assert EXPECTED[client] in found, (client, record["path"], found)
        seen.add(client)
    assert seen == set(EXPECTED)


def test_curl_cffi_impersonation_reasons(sanity: ClientSanity) -> None:
    record = next(r for r in scraper_requests() if r["client"] == "curl_cffi-chrome")
    evidence = sanity.check(facts_for([tuple(p) for p in record["headers"]]))  # type: ignore[attr-defined,misc]
    reasons = " | ".join(e.reason for e in evidence)
    assert "h2c upgrade" in reasons
    assert "Host after" in reasons


# -- header consistency ---------------------------------------------------------------------


def _without(headers: list[tuple[str, str]], *names: str) -> list[tuple[str, str]]:
    return [(k, v) for k, v in headers if not any(k.lower().startswith(n) for n in names)]


@pytest.mark.parametrize("ua", [CHROME_UA, FIREFOX_UA, SAFARI_UA])
def test_real_header_sets_pass(sanity: ClientSanity, ua: str) -> None:
    assert sanity.check(facts_for(browser_headers(ua), scheme="https")) == []
    # Plain HTTP to a public host: the same, minus what browsers only send to secure origins.
    plain = _without(browser_headers(ua), "sec-")
    assert sanity.check(facts_for(plain)) == []


def test_chrome_without_client_hints_is_flagged_on_https(sanity: ClientSanity) -> None:
    headers = _without(browser_headers(CHROME_UA), "sec-ch-ua")
    evidence = sanity.check(facts_for(headers, scheme="https"))
    assert [e.detector for e in evidence] == ["client.inconsistent_browser"]
    assert "sec-ch-ua" in evidence[0].reason and "Chrome 131" in evidence[0].reason
    assert evidence[0].weight == Policy().client.inconsistent_browser


def test_chrome_without_client_hints_is_flagged_on_loopback_http(sanity: ClientSanity) -> None:
    # Chrome treats http://127.0.0.1 and localhost as potentially trustworthy and sends hints.
    headers = _without(browser_headers(CHROME_UA, host="127.0.0.1:8000"), "sec-")
    assert "client.inconsistent_browser" in detectors(sanity, facts_for(headers))


def test_chrome_with_sec_fetch_but_no_hints_is_flagged_without_scheme(sanity: ClientSanity) -> None:
    # Sec-Fetch-* proves a secure context even when the door did not say "https".
    headers = _without(browser_headers(CHROME_UA), "sec-ch-ua")
    assert "client.inconsistent_browser" in detectors(sanity, facts_for(headers))


def test_old_chrome_needs_no_client_hints(sanity: ClientSanity) -> None:
    ua = CHROME_UA.replace("131.0.0.0", "85.0.4183.121")
    assert sanity.check(facts_for(browser_headers(ua), scheme="https")) == []


def test_firefox_without_sec_fetch_is_flagged(sanity: ClientSanity) -> None:
    headers = _without(browser_headers(FIREFOX_UA), "sec-fetch")
    evidence = sanity.check(facts_for(headers, scheme="https"))
    assert "sec-fetch" in evidence[0].reason


@pytest.mark.parametrize("ua", [FIREFOX_UA, SAFARI_UA])
def test_non_chromium_sending_client_hints_is_flagged(sanity: ClientSanity, ua: str) -> None:
    headers = [("sec-ch-ua", '"Chromium";v="131"'), *browser_headers(ua)]
    evidence = sanity.check(facts_for(headers, scheme="https"))
    assert any("Chromium client hints" in e.reason for e in evidence)


def test_hint_brand_version_and_platform_must_match_the_user_agent(sanity: ClientSanity) -> None:
    headers = [
        (k, '"Chromium";v="120", "Google Chrome";v="120"' if k == "sec-ch-ua" else v)
        for k, v in browser_headers(CHROME_UA)
    ]
    assert "version 120" in sanity.check(facts_for(headers, scheme="https"))[0].reason
    headers = [(k, '"Linux"' if k == "sec-ch-ua-platform" else v) for k, v in browser_headers(CHROME_UA)]
    assert "platform" in sanity.check(facts_for(headers, scheme="https"))[0].reason


def test_headless_brand_in_client_hints(sanity: ClientSanity) -> None:
    headers = [
        (k, '"HeadlessChrome";v="131"' if k == "sec-ch-ua" else v) for k, v in browser_headers(CHROME_UA)
    ]
    assert "client.headless" in detectors(sanity, facts_for(headers, scheme="https"))


def test_python_requests_with_a_spoofed_browser_user_agent(sanity: ClientSanity) -> None:
    # requests' default header order with only the User-Agent replaced.
    headers = [
        ("Host", "example.org"),
        ("User-Agent", CHROME_UA),
        ("Accept-Encoding", "gzip, deflate"),
        ("Accept", "*/*"),
        ("Connection", "keep-alive"),
    ]
    found = {e.detector: e.reason for e in sanity.check(facts_for(headers, scheme="https"))}
    assert "Accept-Encoding before Accept" in found["client.header_order"]
    assert "client.missing_accept_language" in found
    assert "client.inconsistent_browser" in found


def test_browser_claim_without_basic_headers(sanity: ClientSanity) -> None:
    evidence = sanity.check(facts_for([("Host", "example.org"), ("User-Agent", FIREFOX_UA)]))
    reasons = {e.detector: e.reason for e in evidence}
    assert "sends no accept or accept-encoding" in reasons["client.inconsistent_browser"]
    assert "client.missing_accept_language" in reasons


def test_proxy_headers_do_not_disturb_the_order_check(sanity: ClientSanity) -> None:
    headers = [("X-Forwarded-For", "198.51.100.7"), ("Via", "1.1 cdn"), *browser_headers(CHROME_UA)]
    assert sanity.check(facts_for(headers, scheme="https")) == []


def test_websocket_upgrade_is_not_h2c(sanity: ClientSanity) -> None:
    headers = [*browser_headers(CHROME_UA), ("Upgrade", "websocket"), ("Sec-WebSocket-Version", "13")]
    assert sanity.check(facts_for(headers, scheme="https")) == []


def test_preflight_and_user_agent_only_requests_are_not_judged_on_headers(sanity: ClientSanity) -> None:
    assert (
        sanity.check(facts_for([("Host", "example.org"), ("User-Agent", CHROME_UA)], method="OPTIONS")) == []
    )
    assert sanity.check(RequestFacts(now=0.0, ip="203.0.113.9", user_agent=CHROME_UA)) == []


# -- user agent only signals ----------------------------------------------------------------


def test_empty_user_agent(sanity: ClientSanity) -> None:
    evidence = sanity.check(facts_for([("Host", "example.org"), ("Accept", "*/*")]))
    assert [e.detector for e in evidence] == ["client.empty_ua"]


def test_deny_user_agents_from_the_policy() -> None:
    sanity = ClientSanity(Policy(deny={"user_agents": ["evil-?scraper", "^BadBot"]}), load_bot_patterns())
    evidence = sanity.check(facts_for([("User-Agent", "Mozilla/5.0 EVIL-SCRAPER 1.0")]))
    assert evidence[0].detector == "client.deny_ua" and evidence[0].weight == 100.0
    assert sanity.check(facts_for(browser_headers(CHROME_UA), scheme="https")) == []


def test_a_broken_deny_expression_stops_start_up() -> None:
    with pytest.raises(ValueError, match=r"deny\.user_agents"):
        ClientSanity(Policy(deny={"user_agents": ["(unclosed"]}), load_bot_patterns())


def test_weights_come_from_the_policy() -> None:
    policy = Policy(client={"bot_user_agents": 33, "ai_crawlers": 44, "headless": 55})
    sanity = ClientSanity(policy, load_bot_patterns())
    weights = {
        ua: sanity.check(facts_for([("User-Agent", ua)]))[0].weight
        for ua in ["curl/8.0", "GPTBot/1.1", "Mozilla/5.0 HeadlessChrome/120.0.0.0"]
    }
    assert weights == {"curl/8.0": 33, "GPTBot/1.1": 44, "Mozilla/5.0 HeadlessChrome/120.0.0.0": 55}


@pytest.mark.parametrize(
    ("ua", "bot"),
    [
        ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "googlebot"),
        ("Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", "bingbot"),
        (
            "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; +https://openai.com/gptbot)",
            "openai",
        ),
        ("DuckDuckBot/1.1; (+http://duckduckgo.com/duckduckbot.html)", "duckduckbot"),
        ("Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)", "yandex"),
        ("Mozilla/5.0 (compatible; Baiduspider/2.0; +http://www.baidu.com/search/spider.html)", "baidu"),
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_5) AppleWebKit/605.1.15 (KHTML, like Gecko) "
            "Applebot/0.1",
            "applebot",
        ),
        (CHROME_UA, None),
        ("", None),
    ],
)
def test_claimed_bot(sanity: ClientSanity, ua: str, bot: str | None) -> None:
    assert sanity.claimed_bot(ua) == bot


# -- hostile input --------------------------------------------------------------------------


def test_reasons_escape_and_truncate_attacker_text() -> None:
    sanity = ClientSanity(Policy(deny={"user_agents": ["evil"]}), load_bot_patterns())
    ua = "evil\n<script>alert(1)</script>\x00" + "A" * 500
    reason = sanity.check(facts_for([("User-Agent", ua)]))[0].reason
    assert "\n" not in reason and "\x00" not in reason and "\\n" in reason
    assert len(reason) < 140


def test_hostile_user_agents_never_raise(sanity: ClientSanity) -> None:
    garbage = bytes(range(256)).decode("latin-1")
    for ua in [garbage, "A" * 10_000, "Mozilla/5.0 (" * 2000, "\ud800", "Chrome/" + "9" * 5000]:
        facts = facts_for([("Host", "example.org"), ("User-Agent", ua), ("sec-ch-ua", ua)], scheme="https")
        sanity.check(facts)
        sanity.claimed_bot(ua)


@settings(max_examples=300, deadline=None)
@given(
    ua=st.text(max_size=300),
    headers=st.lists(
        st.tuples(
            st.sampled_from(
                [
                    "host",
                    "accept",
                    "accept-encoding",
                    "sec-ch-ua",
                    "sec-ch-ua-platform",
                    "http2-settings",
                    "x",
                ]
            ),
            st.text(max_size=60),
        ),
        max_size=12,
    ),
    method=st.sampled_from(["GET", "OPTIONS", "POST", ""]),
)
def test_any_input_gives_a_list_of_evidence(ua: str, headers: list[tuple[str, str]], method: str) -> None:
    sanity = client_sanity(Policy())
    facts = RequestFacts(
        now=0.0, ip="x", method=method, headers=(("user-agent", ua), *headers), user_agent=ua
    )
    for item in sanity.check(facts):
        assert item.detector.startswith("client.") and 0 <= item.weight <= 100


def test_repeat_clients_hit_the_cache(sanity: ClientSanity) -> None:
    facts = facts_for(browser_headers(FIREFOX_UA), scheme="https")
    first = sanity.check(facts)
    before = sanity.cache_info()
    assert sanity.check(facts) == first
    after = sanity.cache_info()
    assert after["ua_hits"] > before["ua_hits"] and after["shape_hits"] == before["shape_hits"] + 1
