"""Scraper 9: a real Scrapy spider over the profiles, in a child process.

The spider (``scrapy_profiles.py``) starts at the home page and follows profile, followers and
pagination links, with the settings most scrapers run: robots.txt ignored, a small download
delay, a few concurrent requests, a current Chrome user agent and, as every actor here, its
simulated public address (a hosting network) in ``X-Forwarded-For``. It stops itself at the
time left (``CLOSESPIDER_TIMEOUT``) or the page cap (``CLOSESPIDER_PAGECOUNT``), and is killed
if it overruns. Every response, refusals included (``HTTPERROR_ALLOW_ALL``), is written to a
JSON-lines file that this actor scores afterwards.
"""

from __future__ import annotations

import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

from .base import ActorResult, Target
from .programs import ProgramUnavailable, chrome_user_agent, hosting_address, run_program

PAGE_CAP = 2000
DOWNLOAD_DELAY_S = 0.05
CHROME_VERSION = "140"
"""User agent the spider claims (scrapers copy a current browser's string)."""


def scrapy_unavailable() -> str | None:
    try:
        import scrapy  # noqa: F401
    except ImportError:
        return "the `scrapy` Python package is not installed (pip install 'scrapewarden[demo]')"
    return None


def spider_settings(ip: str, seconds: float, cap: int, user_agent: str) -> dict[str, object]:
    """Scrapy settings for a crawl of ``seconds`` (from now) and at most ``cap`` pages."""
    return {
        "ROBOTSTXT_OBEY": False,
        "DOWNLOAD_DELAY": DOWNLOAD_DELAY_S,
        "CONCURRENT_REQUESTS": 8,
        "CONCURRENT_REQUESTS_PER_DOMAIN": 4,
        "DOWNLOAD_TIMEOUT": 10,
        "CLOSESPIDER_TIMEOUT": max(1.0, seconds),
        "SCRAPEWARDEN_STOP_AT": time.time() + seconds,  # the runner re-measures the time left
        "CLOSESPIDER_PAGECOUNT": cap,
        "HTTPERROR_ALLOW_ALL": True,
        "USER_AGENT": user_agent,
        "DEFAULT_REQUEST_HEADERS": {
            "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
            "Accept-Language": "en-US,en;q=0.9",
            "X-Forwarded-For": ip,
        },
        # No listening ports per crawl (telnet console, newer Scrapy's remote control).
        "TELNETCONSOLE_ENABLED": False,
        "REMOTE_CONTROL_ENABLED": False,
        "LOG_LEVEL": "INFO",
    }


async def run_scrapy_spider(
    target: Target,
    deadline: float,
    rng: random.Random,
    *,
    name: str = "scrapy-spider",
    ip: str | None = None,
    cap: int = PAGE_CAP,
    user_agent: str | None = None,
    log: Path | None = None,
) -> ActorResult:
    """Crawl until ``deadline`` or ``cap`` pages and score what came back.

    ``log``: where the crawl's own output goes (for a person reading why it stopped); by
    default it is discarded with the temporary directory. Raises ProgramUnavailable without Scrapy.
    """
    reason = scrapy_unavailable()
    if reason:
        raise ProgramUnavailable(reason)
    result = ActorResult(name, "scraper")
    address = ip or hosting_address(rng)
    seconds = deadline - time.monotonic()
    if seconds < 1.0:
        return result
    settings = spider_settings(address, seconds, cap, user_agent or chrome_user_agent(CHROME_VERSION))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCRAPY_")}
    with tempfile.TemporaryDirectory(prefix="scrapewarden-scrapy-") as work:
        received = Path(work) / "responses.jsonl"
        argv = [
            sys.executable,
            "-m",
            "scrapewarden.demo.actors.scrapy_profiles",
            target.base_url.rstrip("/") + "/",
            str(received),
            json.dumps(settings),
        ]
        # The spider closes itself at the deadline; should it overrun, it gets SIGTERM (Scrapy
        # then shuts down cleanly), then SIGKILL after the grace.
        await run_program(argv, deadline, cwd=Path(work), env=env, stdout=log)
        score_lines(received, target.secret, result)
    return result


async def run(target: Target, deadline: float, rng: random.Random) -> ActorResult:
    """The standard scraper 9."""
    return await run_scrapy_spider(target, deadline, rng)


def score_lines(path: Path, secret: bytes, result: ActorResult) -> None:
    """Score each response the spider wrote down; a line cut short by a kill is skipped."""
    if not path.exists():
        return
    with path.open(encoding="utf-8", errors="replace") as lines:
        for raw in lines:
            try:
                line = json.loads(raw)
                if "error" in line:
                    result.errors += 1
                    continue
                status = int(line["status"])
                body = str(line.get("tokens") or line.get("body") or "")
                latency = float(line.get("latency_s", 0.0))
            except (ValueError, KeyError, TypeError):
                continue
            result.saw(status, body, secret, latency)
