"""People in real Chromium: they land on the home page or the feed, click through to friends'
profiles and followers lists, sometimes search a name and open a result, and think between
clicks. Some log in first, through the site's login form.

Each person is a fresh browser context (own cookies, viewport, language and time zone) in ONE
shared headless Chromium, with at most a few contexts open at once (browsers are heavy and the
machine small). Their simulated public address travels in ``X-Forwarded-For`` on every request
the browser makes, pages and assets alike. Every page (document response) they see is scored.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..people import DEMO_PASSWORD
from .base import ActorResult, Target
from .browsing import DocumentScorer, launch_chromium, settle, step_timeout_ms
from .programs import GRACE_S, ProgramUnavailable, browser_unavailable, chrome_user_agent, residential_address

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page

PROFILE_LINKS = 'a[href^="/users/"], a[href^="/@"]'
SEARCH_BOX = 'input[name="q"]'
SEARCH_LINK = 'a[href="/search"]'
FEED_LINK = 'a[href="/feed"]'

THINK_MEDIAN_S = 6.0
THINK_SIGMA = 0.9
"""Think time between clicks is log-normal: mostly a few seconds, now and then much longer."""

SEARCH_SHARE = 0.15
"""Share of a person's clicks that are a name typed into search instead of a link."""

LOGGED_IN_SHARE = 0.3
"""Share of the people made by :func:`make_browser_people` who log in first."""

MAX_CONTEXTS = 2
"""Browser contexts open at once: enough for overlap, few enough for a two-core machine."""

VIEWPORTS = ((1366, 768), (1920, 1080), (1536, 864), (1440, 900), (1280, 720), (1600, 900))
LOCALES = (
    ("en-US", "America/New_York"),
    ("en-US", "America/Los_Angeles"),
    ("en-GB", "Europe/London"),
    ("de-DE", "Europe/Berlin"),
    ("fr-FR", "Europe/Paris"),
    ("es-ES", "Europe/Madrid"),
    ("nl-NL", "Europe/Amsterdam"),
    ("pt-BR", "America/Sao_Paulo"),
)


@dataclass(frozen=True)
class BrowserPerson:
    name: str
    ip: str
    """Simulated public address, sent as X-Forwarded-For."""
    clicks: int
    """Clicks (links followed or searches made) after arriving; 5-20 is typical."""
    logged_in_as: str | None = None
    """Handle to log in as through the login form first, or None to browse signed out."""
    time_scale: float = 1.0
    """Multiplies think and typing times (a one-minute demo uses a fraction of real time)."""


def make_browser_people(
    rng: random.Random, count: int, target: Target, time_scale: float = 1.0
) -> list[BrowserPerson]:
    """``count`` people from unlisted (residential-looking) addresses, some of them logged in."""
    people = []
    for n in range(count):
        handle = rng.choice(target.handles) if target.handles and rng.random() < LOGGED_IN_SHARE else None
        people.append(
            BrowserPerson(
                name=f"chromium-person-{n + 1}",
                ip=residential_address(rng),
                clicks=rng.randint(5, 20),
                logged_in_as=handle,
                time_scale=time_scale,
            )
        )
    return people


async def run_browser_people(
    people: list[BrowserPerson],
    target: Target,
    deadline: float,
    *,
    rng: random.Random | None = None,
    max_contexts: int = MAX_CONTEXTS,
) -> list[ActorResult]:
    """Browse as ``people`` until each is done or ``deadline``; one result per person, in order.

    A person whose turn never came before the deadline has ``sessions == 0`` and no requests.
    Raises :class:`ProgramUnavailable` when Playwright or Chromium is missing.
    """
    reason = browser_unavailable()
    if reason:
        raise ProgramUnavailable(reason)
    from playwright.async_api import async_playwright

    base_seed = (rng or random.Random(0)).getrandbits(64)
    results = [ActorResult(person.name, "human", sessions=0) for person in people]
    turns = asyncio.Semaphore(max(1, max_contexts))

    async with async_playwright() as playwright:
        browser = await launch_chromium(playwright, as_person=True)
        user_agent = chrome_user_agent(browser.version)

        async def take_turn(index: int, person: BrowserPerson) -> None:
            async with turns:
                if time.monotonic() >= deadline:
                    return
                results[index].sessions = 1
                person_rng = random.Random(f"{base_seed}-{person.name}")
                await _browse(browser, user_agent, person, target, deadline, person_rng, results[index])

        try:
            everyone = asyncio.gather(*(take_turn(i, p) for i, p in enumerate(people)))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(everyone, timeout=max(0.0, deadline - time.monotonic()) + GRACE_S)
        finally:
            with contextlib.suppress(Exception):
                await browser.close()
    return results


async def run(target: Target, deadline: float, rng: random.Random) -> list[ActorResult]:
    """The standard actor: three people in Chromium at a demo's pace (think times x 0.15)."""
    return await run_browser_people(
        make_browser_people(rng, 3, target, time_scale=0.15), target, deadline, rng=rng
    )


# ---- one person ------------------------------------------------------------------------------


async def _browse(
    browser: Browser,
    user_agent: str,
    person: BrowserPerson,
    target: Target,
    deadline: float,
    rng: random.Random,
    result: ActorResult,
) -> None:
    width, height = rng.choice(VIEWPORTS)
    locale, timezone = rng.choice(LOCALES)
    context = await browser.new_context(
        viewport={"width": width, "height": height},
        locale=locale,
        timezone_id=timezone,
        user_agent=user_agent,
        extra_http_headers={"X-Forwarded-For": person.ip},
    )
    try:
        page = await context.new_page()
        scorer = DocumentScorer(page, result, target.secret)
        # Arriving: a bookmark or a typed address, so no Referer.
        await _navigate(page, deadline, result, goto=target.base_url + rng.choice(("/", "/feed")))
        await scorer.drain()
        if person.logged_in_as:
            await _think(rng, person.time_scale, deadline)
            await _log_in(page, target, person.logged_in_as, deadline, result)
            await scorer.drain()
        for _ in range(person.clicks):
            await _think(rng, person.time_scale, deadline)
            if time.monotonic() >= deadline:
                break
            searched = False
            if target.first_names and rng.random() < SEARCH_SHARE:
                searched = await _search(
                    page, rng.choice(target.first_names), rng, person.time_scale, deadline, result
                )
            if not searched:
                await _click_a_profile(page, target, rng, deadline, result)
            await scorer.drain()
    finally:
        with contextlib.suppress(Exception):
            await context.close()


async def _think(rng: random.Random, time_scale: float, deadline: float) -> None:
    pause = rng.lognormvariate(math.log(THINK_MEDIAN_S), THINK_SIGMA) * time_scale
    await asyncio.sleep(max(0.0, min(pause, deadline - time.monotonic())))


async def _navigate(
    page: Page, deadline: float, result: ActorResult, *, goto: str | None = None, action: str = ""
) -> bool:
    """Go to ``goto`` (typed address) or do ``action`` on the page, and wait for the new page.

    ``action`` is ``"click:<n>"`` (the n-th visible profile link), ``"click_feed:<selector>"``
    (the first visible link matching) or ``"enter:<selector>"`` (Enter pressed in that field).
    """
    timeout = step_timeout_ms(deadline)
    try:
        if goto is not None:
            await page.goto(goto, timeout=timeout, wait_until="load")
            return True
        async with page.expect_navigation(timeout=timeout, wait_until="commit"):
            kind, _, arg = action.partition(":")
            if kind == "click":
                await page.locator(PROFILE_LINKS).filter(visible=True).nth(int(arg)).click(timeout=timeout)
            elif kind == "click_feed":
                await page.locator(arg).filter(visible=True).first.click(timeout=timeout)
            else:
                await page.locator(arg).first.press("Enter", timeout=timeout)
    except Exception:
        # A link that went away, a page that never came: a person would just try again.
        result.errors += 1
        return False
    await settle(page, deadline)
    return True


async def _click_a_profile(
    page: Page, target: Target, rng: random.Random, deadline: float, result: ActorResult
) -> None:
    links = page.locator(PROFILE_LINKS).filter(visible=True)
    try:
        count = await links.count()
    except Exception:
        count = 0
    if count:
        await _navigate(page, deadline, result, action=f"click:{rng.randrange(count)}")
        return
    # A page without profiles (the home page signed out, a refusal, an empty search): on to
    # the feed by its link, else back, else the feed by address.
    feed = page.locator(FEED_LINK).filter(visible=True)
    try:
        has_feed_link = bool(await feed.count()) and not page.url.endswith("/feed")
    except Exception:
        has_feed_link = False
    if has_feed_link:
        await _navigate(page, deadline, result, action=f"click_feed:{FEED_LINK}")
        return
    try:
        went_back = await page.go_back(timeout=step_timeout_ms(deadline), wait_until="load")
    except Exception:
        went_back = None
    if went_back is None:
        await _navigate(page, deadline, result, goto=target.base_url + "/feed")


async def _search(
    page: Page, name: str, rng: random.Random, time_scale: float, deadline: float, result: ActorResult
) -> bool:
    """Type ``name`` into a search box and submit; False when there is no way to search.

    A page without a box but with a link to the search page: that link is clicked first.
    """
    box = page.locator(SEARCH_BOX).filter(visible=True)
    try:
        if not await box.count():
            link = page.locator(SEARCH_LINK).filter(visible=True)
            if not await link.count():
                return False
            async with page.expect_navigation(timeout=step_timeout_ms(deadline), wait_until="load"):
                await link.first.click(timeout=step_timeout_ms(deadline))
            await _think(rng, time_scale / 3, deadline)  # finding the box takes a moment
            if not await box.count():
                return False
        await box.first.click(timeout=step_timeout_ms(deadline))
        await box.first.press_sequentially(name, delay=rng.uniform(60.0, 180.0) * time_scale)
    except Exception:
        result.errors += 1
        return False
    return await _navigate(page, deadline, result, action=f"enter:{SEARCH_BOX}")


async def _log_in(page: Page, target: Target, handle: str, deadline: float, result: ActorResult) -> None:
    """Open the login page (its link if the page has one) and sign in through the form."""
    link = page.locator('a[href="/login"]').filter(visible=True)
    try:
        has_link = bool(await link.count())
    except Exception:
        has_link = False
    if has_link:
        try:
            async with page.expect_navigation(timeout=step_timeout_ms(deadline), wait_until="load"):
                await link.first.click(timeout=step_timeout_ms(deadline))
        except Exception:
            has_link = False
    if not has_link and not await _navigate(page, deadline, result, goto=target.base_url + "/login"):
        return
    try:
        await page.locator('input[name="handle"]').first.fill(handle, timeout=step_timeout_ms(deadline))
        await page.locator('input[name="password"]').first.fill(
            DEMO_PASSWORD, timeout=step_timeout_ms(deadline)
        )
    except Exception:
        result.errors += 1
        return
    await _navigate(page, deadline, result, action='enter:input[name="password"]')
