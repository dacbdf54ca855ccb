"""Scraper 8: headless Chromium driven like a careful scraper.

It renders every page with its stylesheets, scripts and images, looks like desktop Chrome
(no ``HeadlessChrome`` in its user agent), skips hidden links, and walks the social graph
breadth-first: home -> feed (a listing) -> profiles -> their followers lists (all pages) ->
more profiles. Each page is opened by *clicking* its link on the page that lists it, then
going back, so Referer and ``Sec-Fetch-Site: same-origin`` are what a person's clicks send
(``goto`` with a referer would say ``Sec-Fetch-Site: none`` beside a Referer, a tell). Its
pace is moderate (a second or so per page, jittered), from one address in a hosting network,
as a scraper renting a cloud machine would.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import time
from collections import deque
from typing import TYPE_CHECKING
from urllib.parse import urljoin, urlsplit

from .base import ActorResult, Target
from .browsing import DocumentScorer, launch_chromium, settle, step_timeout_ms, visible_hrefs
from .programs import ProgramUnavailable, browser_unavailable, chrome_user_agent, hosting_address

if TYPE_CHECKING:
    from playwright.async_api import Page

PAGE_CAP = 400
"""Most pages one run opens."""

PAUSE_S = (0.6, 1.6)
"""Seconds between pages (uniform), times ``time_scale``."""

PROFILE_PATH = re.compile(r"^/(?:users/\d+|@[^/?#]+)$")
FOLLOWERS_PATH = re.compile(r"^/users/\d+/followers$")


async def run_headless_scraper(
    target: Target,
    deadline: float,
    rng: random.Random,
    *,
    name: str = "headless-chromium",
    ip: str | None = None,
    cap: int = PAGE_CAP,
    time_scale: float = 1.0,
) -> ActorResult:
    """Walk profiles until ``deadline`` or ``cap`` pages; raises ProgramUnavailable without Chromium."""
    reason = browser_unavailable()
    if reason:
        raise ProgramUnavailable(reason)
    from playwright.async_api import async_playwright

    result = ActorResult(name, "scraper")
    address = ip or hosting_address(rng)
    async with async_playwright() as playwright:
        browser = await launch_chromium(playwright)
        try:
            context = await browser.new_context(
                viewport={"width": 1920, "height": 1080},
                locale="en-US",
                timezone_id="America/New_York",
                user_agent=chrome_user_agent(browser.version),
                extra_http_headers={"X-Forwarded-For": address},
            )
            page = await context.new_page()
            scorer = DocumentScorer(page, result, target.secret)
            await _walk(page, scorer, target, deadline, rng, cap, time_scale, result)
        finally:
            with contextlib.suppress(Exception):
                await browser.close()
    return result


async def run(target: Target, deadline: float, rng: random.Random) -> ActorResult:
    """The standard scraper 8."""
    return await run_headless_scraper(target, deadline, rng)


async def _walk(
    page: Page,
    scorer: DocumentScorer,
    target: Target,
    deadline: float,
    rng: random.Random,
    cap: int,
    time_scale: float,
    result: ActorResult,
) -> None:
    origin = target.base_url.rstrip("/")
    # (path to open, href that links to it, page it was found on): breadth-first, so the
    # links of one page follow each other in the queue and are clicked from it in turn.
    queue: deque[tuple[str, str, str | None]] = deque([("/", "/", None)])
    queued = {"/"}
    here: str | None = None  # the page the browser shows
    before: str | None = None  # the page "back" returns to
    opened = 0
    while queue and opened < cap and time.monotonic() < deadline:
        path, href, parent = queue.popleft()
        opened += 1
        try:
            if parent is not None and here != parent:
                # Back to the listing (one step back when we came from it, else by address).
                if before == parent:
                    await page.go_back(timeout=step_timeout_ms(deadline), wait_until="load")
                else:
                    await page.goto(origin + parent, timeout=step_timeout_ms(deadline), wait_until="load")
                here, before = parent, None
                await scorer.drain()
            if parent is None:
                await page.goto(origin + path, timeout=step_timeout_ms(deadline), wait_until="commit")
            else:
                link = page.locator(f'a[href="{_css_string(href)}"]').filter(visible=True).first
                async with page.expect_navigation(timeout=step_timeout_ms(deadline), wait_until="commit"):
                    await link.click(timeout=step_timeout_ms(deadline))
            here, before = path, parent
        except Exception:
            result.errors += 1
            here = before = None  # unsure where the browser is: go by address next time
            await scorer.drain()
            continue
        await settle(page, deadline)  # stylesheets, scripts and images load like in a browser
        statuses = [status for status, _ in await scorer.drain()]
        if statuses and statuses[-1] == 200:
            for raw in await visible_hrefs(page, "a[href]"):
                found = _site_path(origin, path, raw)
                if found and found not in queued and _worth_following(found):
                    queued.add(found)
                    queue.append((found, raw, path))
        await _pause(rng, time_scale, deadline)


def _css_string(text: str) -> str:
    """``text`` escaped for a double-quoted CSS attribute value."""
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _site_path(origin: str, here: str, href: str) -> str | None:
    """``href`` as a path (with query) on the site, or None when it leads elsewhere."""
    absolute = urljoin(origin + here, href)
    parts = urlsplit(absolute)
    if f"{parts.scheme}://{parts.netloc}" != origin:
        return None
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _worth_following(path: str) -> bool:
    """The feed (a listing of people), profiles and followers lists with their pages."""
    bare = path.split("?", 1)[0]
    return bare == "/feed" or bool(PROFILE_PATH.match(bare) or FOLLOWERS_PATH.match(bare))


async def _pause(rng: random.Random, time_scale: float, deadline: float) -> None:
    pause = rng.uniform(*PAUSE_S) * time_scale
    await asyncio.sleep(max(0.0, min(pause, deadline - time.monotonic())))
