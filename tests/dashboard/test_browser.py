"""The dashboard in real Chromium (Debian's, through Playwright).

Screenshots go to a temporary directory; set SCRAPEWARDEN_SCREENSHOTS=docs/img to refresh the
ones the docs show.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from .conftest import BOT_UA, PASSWORD, XSS_UA, Setup
from .test_app_http import PAGES

pytestmark = pytest.mark.slow


class Watch:
    """What a page did that it must not: dialogs (alert from injected markup), CSP violations."""

    def __init__(self, page: Any) -> None:
        self.dialogs: list[str] = []
        self.console: list[str] = []
        page.on("dialog", self._dialog)
        page.on("console", lambda msg: self.console.append(msg.text))

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    @property
    def csp_violations(self) -> list[str]:
        return [m for m in self.console if "Content Security Policy" in m]


def _page(browser: Any) -> tuple[Any, Any, Watch]:
    context = browser.new_context(viewport={"width": 1180, "height": 760})
    page = context.new_page()
    return context, page, Watch(page)


def _login(page: Any, base: str, name: str) -> None:
    page.goto(base + "/login")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(base + "/")


def _wait_for_status(setup: Setup, address: str, want: int) -> int:
    deadline = time.monotonic() + 10
    code = 0
    while time.monotonic() < deadline:
        code = setup.traffic(address, "/people/9")[0]
        if code == want:
            break
        time.sleep(0.25)
    return code


def test_strangers_are_sent_to_login_on_every_page(browser: Any, setup: Setup) -> None:
    context, page, watch = _page(browser)
    for path in PAGES:
        page.goto(setup.dash + path)
        assert page.url.startswith(setup.dash + "/login?next="), path
        assert page.locator("input[name=password]").count() == 1
    assert not watch.csp_violations
    context.close()


def test_analyst_sees_traffic_bans_an_actor_and_the_site_enforces_it(
    browser: Any, setup: Setup, shots: Path
) -> None:
    scraper = "203.0.113.50"
    for i in range(4):
        assert setup.traffic(scraper, f"/people/{i}", ua=BOT_UA) == [403]
    setup.traffic("198.51.100.23", "/.env")
    setup.traffic("198.51.100.24", "/people/3", ua="curl/8.5.0")
    assert setup.traffic(scraper, "/people/9") == [200]  # a browser from the same address passes

    context, page, watch = _page(browser)
    page.goto(setup.dash + "/login")
    page.screenshot(path=str(shots / "dashboard-login.png"))
    _login(page, setup.dash, "ana")
    assert page.locator("#decisions").inner_text() == "6"
    assert page.locator("svg.chart rect").count() >= 1
    pseudonym = setup.site_warden.pseudonymizer.ip(scraper)
    assert page.locator(f"text={pseudonym}").count() >= 1
    # htmx is loaded from /static and configured by the meta tag, nothing inline.
    config = page.evaluate(
        "() => [typeof htmx, htmx.config.selfRequestsOnly, htmx.config.allowEval, "
        "htmx.config.allowScriptTags]"
    )
    assert config == ["object", True, False, False]
    page.screenshot(path=str(shots / "dashboard-overview.png"))

    # Find the actor by its real address, read its timeline, ban it for an hour.
    page.click("nav >> text=Actors")
    page.select_option("select[name=kind]", "ip")
    page.fill("input[name=q]", scraper)
    page.click("form[role=search] button")
    assert page.locator("#actor-value").inner_text() == scraper
    assert page.locator("table.timeline tbody tr").count() == 4
    assert "python-requests" in page.locator("table.timeline").inner_text()
    page.select_option("#ban-form select[name=ttl]", "3600")
    page.fill("#ban-form input[name=note]", "bulk profile reads")
    page.click("#ban")
    page.wait_for_selector("#current-ban")
    assert "bulk profile reads [by ana]" in page.locator("#current-ban").inner_text()
    page.screenshot(path=str(shots / "dashboard-actor.png"))
    assert _wait_for_status(setup, scraper, 403) == 403

    page.click("nav >> text=Bans")
    assert scraper in page.locator("table.bans").inner_text()
    page.screenshot(path=str(shots / "dashboard-bans.png"))
    # The filter narrows the table in place (htmx, same origin, under the CSP).
    page.fill("input[name=q]", "no such ban anywhere")
    page.wait_for_selector("#bans-table >> text=0 shown of 1")
    assert scraper not in page.locator("#bans-table").inner_text()
    assert not watch.dialogs and not watch.csp_violations, watch.console
    context.close()


def test_viewer_has_no_ban_button_and_a_forged_post_is_refused(browser: Any, setup: Setup) -> None:
    setup.traffic("203.0.113.51", "/people/1", ua=BOT_UA)
    context, page, watch = _page(browser)
    _login(page, setup.dash, "vic")
    page.goto(setup.dash + "/actors?kind=ip&q=203.0.113.51")
    assert page.locator("table.timeline tbody tr").count() == 1
    assert page.locator("#ban").count() == 0 and page.locator("#ban-form").count() == 0
    assert page.locator("nav >> text=Users").count() == 0
    token = page.locator("input[name=csrf]").first.get_attribute("value")
    # The POST the button would make, with the viewer's own cookie and a valid CSRF token.
    answer = context.request.post(
        setup.dash + "/actors/ban",
        form={"csrf": token, "kind": "ip", "value": "203.0.113.51", "ttl": "3600"},
        max_redirects=0,
    )
    assert answer.status == 403
    # And without the CSRF token, even an analyst's POST is refused.
    assert not watch.csp_violations
    context.close()
    context, page, _ = _page(browser)
    _login(page, setup.dash, "ana")
    answer = context.request.post(
        setup.dash + "/bans/add", form={"kind": "ip", "value": "203.0.113.51", "ttl": "3600"}, max_redirects=0
    )
    assert answer.status == 403
    assert setup.traffic("203.0.113.51", "/people/2") == [200]  # nothing was banned
    context.close()


def test_hostile_user_agent_shows_as_text_and_runs_nothing(browser: Any, setup: Setup) -> None:
    setup.traffic("203.0.113.66", "/.env", ua=XSS_UA)
    setup.traffic("203.0.113.66", "/.env", ua='"><script>alert(2)</script>')
    context, page, watch = _page(browser)
    _login(page, setup.dash, "vic")
    page.goto(setup.dash + "/actors?kind=ip&q=203.0.113.66")
    shown = page.locator("td.ua").all_inner_texts()
    assert sorted(shown) == sorted([XSS_UA, '"><script>alert(2)</script>'])
    assert page.locator("td.ua img").count() == 0 and page.locator("td.ua script").count() == 0
    page.goto(setup.dash + "/")  # the overview lists the same actor and its worst action
    page.wait_for_timeout(300)  # give an injected handler every chance to fire
    assert watch.dialogs == []
    assert not watch.csp_violations, watch.csp_violations
    context.close()


def test_admin_pages(browser: Any, setup: Setup, shots: Path) -> None:
    context, page, watch = _page(browser)
    _login(page, setup.dash, "ada")
    page.click("nav >> text=Users")
    assert page.locator("table tbody tr").count() == 3
    page.screenshot(path=str(shots / "dashboard-users.png"))
    page.click("nav >> text=Incidents")
    assert "No incidents." in page.locator("table.incidents").inner_text()
    # Logging out ends the session in the browser: every page sends it back to login.
    page.click("text=Log out")
    page.wait_for_url(setup.dash + "/login")
    page.goto(setup.dash + "/bans")
    assert page.url.startswith(setup.dash + "/login?next=")
    assert not watch.csp_violations
    context.close()
