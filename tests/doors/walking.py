"""A walker for the shared-budget tests: a browser-like client reading one profile after another,
alternating between instances, until one of them refuses it."""

from __future__ import annotations

import random
from collections.abc import Callable

import requests

BROWSER = {
    "User-Agent": "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "Accept-Language": "en-GB,en;q=0.5",
    "Sec-Fetch-Dest": "document",
    "Sec-Fetch-Mode": "navigate",
    "Sec-Fetch-Site": "same-origin",
    "Sec-Fetch-User": "?1",
}
"""A browser's headers: only the walk itself should give the walker away."""
POLICY = """
mode = "enforce"
[[protected]]
pattern = "/users/{id}"
[limits.per_ip]
requests_per_minute = 600
profiles_per_hour = 40
profiles_per_day = 200
"""
"""Budgets the walker runs into within a few dozen records."""


def direct(url: str, path: str) -> tuple[str, dict[str, str]]:
    """The request for ``path`` straight to an instance that serves the site."""
    return url + path, BROWSER


def walk(urls: list[str], request: Callable[[str, str], tuple[str, dict[str, str]]] = direct) -> int:
    """Records fetched before the first refusal, alternating between ``urls``; ``request``
    turns (instance, path) into the URL and headers to send (forward-auth describes it)."""
    with requests.Session() as session:
        for n in range(1, 300):
            url, headers = request(urls[n % len(urls)], f"/users/{random.Random(n).randrange(10**6)}")
            if session.get(url, headers=headers, timeout=10).status_code != 200:
                return n
    return 0
