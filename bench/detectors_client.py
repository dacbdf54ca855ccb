"""Per-request cost of the client-sanity and IP-reputation detectors.

Run: ``.venv/bin/python bench/detectors_client.py [--requests N]``

* *repeat clients*: a realistic mix of a few dozen browsers and scrapers sending their usual
  headers again and again, the common case (both caches hit);
* *fresh user agents*: every request a user agent never seen before (an attacker rotating
  through a user-agent list): the full pattern scan each time;
* *IP reputation*: ``IpReputation.check`` over a mix of hosting, Tor and clean addresses.

Prints figures only; the numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import time

from scrapewarden.core.facts import RequestFacts
from scrapewarden.core.policy import Policy
from scrapewarden.lists import client_sanity, ip_reputation

CHROME = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v}.0.0.0 Safari/537.36"  # noqa: E501
ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


def chrome_request(version: int, ip: str) -> RequestFacts:
    ua = CHROME.format(v=version)
    headers = (
        ("host", "example.org"),
        ("connection", "keep-alive"),
        ("sec-ch-ua", f'"Chromium";v="{version}", "Google Chrome";v="{version}", "Not_A Brand";v="24"'),
        ("sec-ch-ua-mobile", "?0"),
        ("sec-ch-ua-platform", '"Windows"'),
        ("upgrade-insecure-requests", "1"),
        ("user-agent", ua),
        ("accept", ACCEPT),
        ("sec-fetch-site", "none"),
        ("sec-fetch-mode", "navigate"),
        ("sec-fetch-user", "?1"),
        ("sec-fetch-dest", "document"),
        ("accept-encoding", "gzip, deflate, br, zstd"),
        ("accept-language", "en-US,en;q=0.9"),
        ("cookie", "session=abc"),
    )
    return RequestFacts(now=0.0, ip=ip, headers=headers, user_agent=ua, extra={"scheme": "https"})


def scraper_request(ua: str, ip: str) -> RequestFacts:
    headers = (("host", "example.org"), ("user-agent", ua), ("accept-encoding", "gzip"), ("accept", "*/*"))
    return RequestFacts(now=0.0, ip=ip, headers=headers, user_agent=ua)


def per_call(fn: object, items: list[object]) -> float:
    start = time.perf_counter()
    for item in items:
        fn(item)  # type: ignore[operator]
    return (time.perf_counter() - start) / len(items) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=200_000)
    n = parser.parse_args().requests
    policy = Policy()
    start = time.perf_counter()
    client = client_sanity(policy)
    reputation = ip_reputation(policy)
    print(f"loading lists: {time.perf_counter() - start:.2f} s")

    mix: list[object] = [chrome_request(v, f"198.51.100.{v}") for v in range(110, 140)]
    mix += [
        scraper_request(ua, "203.0.113.5")
        for ua in ["python-requests/2.32.3", "curl/8.5.0", CHROME.format(v=131)]
    ]
    requests = [mix[i % len(mix)] for i in range(n)]
    client.check(requests[0])  # type: ignore[arg-type]
    print(f"client.check, repeat clients: {per_call(client.check, requests):.2f} µs/request")

    fresh: list[object] = [chrome_request(131, "198.51.100.1") for _ in range(min(n, 20_000))]
    for i, facts in enumerate(fresh):
        facts.user_agent = facts.user_agent.replace("Safari/537.36", f"Safari/537.{i}")  # type: ignore[attr-defined]
    print(f"client.check, fresh user agents: {per_call(client.check, fresh):.2f} µs/request")

    ips: list[object] = [
        ["1.12.0.1", "185.220.101.1", "8.8.8.8", "192.0.2.1", "2001:db8::1", "66.249.66.1"][i % 6]
        for i in range(n)
    ]
    print(f"reputation.check: {per_call(reputation.check, ips):.2f} µs/request")
    in_range = per_call(lambda ip: reputation.in_crawler_range(ip, "googlebot"), ips)
    print(f"reputation.in_crawler_range: {in_range:.2f} µs")
    print("cache:", client.cache_info())


if __name__ == "__main__":
    main()
