"""Allowing an actor from its actor page, in real Chromium (Debian's, through Playwright): a
real site on the same store (its own Warden) answers the blocked actor 200 once allowed, and
blocks it again once the allow is lifted from the Bans page."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from .conftest import BOT_UA, Setup
from .test_browser import _login, _page

pytestmark = pytest.mark.slow


def _wait_for_status(setup: Setup, address: str, want: int) -> int:
    """The site's answer to the actor (a bot user agent), asked until it is ``want`` or 10 s
    have passed: the site's Warden picks allows up with its ban reload, every two seconds."""
    deadline = time.monotonic() + 10
    code = 0
    while time.monotonic() < deadline:
        code = setup.traffic(address, "/people/9", ua=BOT_UA)[0]
        if code == want:
            break
        time.sleep(0.25)
    return code


def test_analyst_allows_a_blocked_actor_and_lifts_the_allow(browser: Any, setup: Setup, shots: Path) -> None:
    actor = "203.0.113.60"
    assert setup.traffic(actor, "/people/1", ua=BOT_UA) == [403]

    context, page, watch = _page(browser)
    _login(page, setup.dash, "ana")
    page.click("nav >> text=Actors")
    page.select_option("select[name=kind]", "ip")
    page.fill("input[name=q]", actor)
    page.click("form[role=search] button")
    assert page.locator("#actor-value").inner_text() == actor
    assert page.locator("#current-allow").count() == 0
    # The Allow form sits next to the Ban form.
    assert page.locator("#ban-form").count() == 1
    page.select_option("#allow-form select[name=ttl]", "3600")
    page.fill("#allow-form input[name=note]", "research contract <b>")
    page.click("#allow")
    page.wait_for_selector("#current-allow")
    notice = page.locator("#current-allow").inner_text()
    assert "Allowed by an operator" in notice and "research contract <b> [by ana]" in notice
    page.screenshot(path=str(shots / "dashboard-actor-allow.png"))

    # The site, on its own Warden over the same store, lets the actor through from now on...
    assert _wait_for_status(setup, actor, 200) == 200
    # ...and its timeline says why.
    page.reload()
    assert "allowed by an operator (ip), overriding" in page.locator("table.timeline").inner_text()

    page.click("nav >> text=Bans")
    row = page.locator("table.allows tbody tr", has_text=actor)
    assert row.count() == 1 and "research contract <b> [by ana]" in row.inner_text()
    row.locator("button", has_text="Lift allow").click()
    page.wait_for_selector("text=Allow lifted.")
    assert page.locator("table.allows tbody tr", has_text=actor).count() == 0

    assert _wait_for_status(setup, actor, 403) == 403
    assert not watch.dialogs and not watch.csp_violations, watch.console
    context.close()
