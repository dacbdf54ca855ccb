"""Shared pieces of the actors that drive real Chromium through Playwright.

Only *document* responses of a page's main frame are scored (the pages a person sees);
the stylesheets, scripts and images the browser loads with them are real requests to the site
but carry no records.
"""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING

from .base import ActorResult
from .programs import launch_options

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page, Playwright, Response

STEP_TIMEOUT_MS = 10_000
"""Longest a single click or page load may take; a stuck page must not hold a run."""


async def launch_chromium(playwright: Playwright, *, as_person: bool = False) -> Browser:
    """One headless Chromium for many contexts (each context is a separate person/profile);
    see :func:`.programs.launch_options` for ``as_person``."""
    return await playwright.chromium.launch(**launch_options(as_person=as_person))


def step_timeout_ms(deadline: float) -> float:
    """A step's timeout: STEP_TIMEOUT_MS, or less when the deadline comes sooner (at least 1 s)."""
    return max(1000.0, min(STEP_TIMEOUT_MS, (deadline - time.monotonic()) * 1000.0))


class DocumentScorer:
    """Collects the main-frame document responses of one page and scores them on ``drain``."""

    def __init__(self, page: Page, result: ActorResult, secret: bytes) -> None:
        self.page = page
        self.result = result
        self.secret = secret
        self._pending: list[Response] = []
        page.on("response", self._on_response)

    def _on_response(self, response: Response) -> None:
        request = response.request
        if request.resource_type == "document" and response.frame == self.page.main_frame:
            self._pending.append(response)

    async def drain(self) -> list[tuple[int, str]]:
        """Score every document response seen since the last drain; returns (status, body)."""
        seen: list[tuple[int, str]] = []
        while self._pending:
            response = self._pending.pop(0)
            body = ""
            if not 300 <= response.status < 400:  # redirects have no body to read
                # The page may have navigated on meanwhile; then its body is gone.
                with contextlib.suppress(Exception):
                    body = await response.text()
            with contextlib.suppress(Exception):
                await response.finished()  # the timing's end is filled in when loading finished
            self.result.saw(response.status, body, self.secret, _elapsed_s(response))
            seen.append((response.status, body))
        return seen


def _elapsed_s(response: Response) -> float:
    """Request start to last byte, from the browser's own navigation timing.

    Timings are milliseconds after the request started, -1 when unknown (an aborted load):
    then the time to the first byte is the best left, else 0.
    """
    timing = response.request.timing
    for mark in ("responseEnd", "responseStart"):
        value = timing.get(mark, -1)
        if isinstance(value, int | float) and value >= 0:
            return float(value) / 1000.0
    return 0.0


async def settle(page: Page, deadline: float) -> None:
    """Wait until the page and its assets have loaded (or the step timeout passes)."""
    with contextlib.suppress(Exception):
        await page.wait_for_load_state("load", timeout=step_timeout_ms(deadline))


async def visible_hrefs(page: Page, selector: str) -> list[str]:
    """The href attributes of the visible links matching ``selector``, in page order.

    Hidden links are left out: a person cannot click them, and a careful scraper skips them
    because hidden links are a classic trap.
    """
    try:
        hrefs = await page.eval_on_selector_all(
            selector,
            "els => els.filter(e => e.checkVisibility()).map(e => e.getAttribute('href'))",
        )
    except Exception:
        return []
    return [h for h in hrefs if isinstance(h, str)]
