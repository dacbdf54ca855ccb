"""Small crafted access logs for the analyzer tests."""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

from scrapewarden.core.policy import Policy, ProtectedResource

START = 1772409600.0  # 2026-03-02 00:00 UTC
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/130.0.0.0 Safari/537.36"
)
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:131.0) Gecko/20100101 Firefox/131.0"
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
POLICY = Policy(protected=[ProtectedResource(pattern="/users/{id}", kind="profile")])


def line(ip: str, ts: float, path: str, ua: str, status: int = 200, referer: str = "-") -> str:
    stamp = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(ts))
    return f'{ip} - - [{stamp}] "GET {path} HTTP/1.1" {status} 1234 "{referer}" "{ua}"'


def people(rng: random.Random, count: int, start: float = START) -> list[tuple[float, str]]:
    """People browsing: pages with their assets, profiles in no order, human pauses."""
    out = []
    for n in range(count):
        ip = f"81.{n // 200}.{n % 200}.7"
        t = start + rng.uniform(0, 6 * 3600)
        ua = rng.choice([CHROME, FIREFOX])
        for i in range(rng.randint(3, 12)):
            path = (
                f"/users/{rng.randint(1, 100000)}"
                if rng.random() < 0.5
                else rng.choice(["/", "/feed", "/about"])
            )
            out.append((t, line(ip, t, path, ua, referer="https://site.example/")))
            for asset in (["/static/app.css", "/static/app.js"] if i == 0 else []) + ["/static/img/1.webp"]:
                out.append((t + 0.1, line(ip, t + 0.1, asset, ua)))
            t += rng.uniform(5, 60)
    return out


def write(path: Path, entries: list[tuple[float, str]]) -> Path:
    entries.sort(key=lambda e: e[0])
    path.write_text("\n".join(text for _, text in entries) + "\n")
    return path


@pytest.fixture
def rng() -> random.Random:
    return random.Random(7)
