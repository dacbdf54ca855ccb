"""The Policy, Incidents and Audit pages in real Chromium (Debian's, through Playwright)."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from scrapewarden.incidents.bundle import verify_bundle

from .conftest import LOWER_BUDGET, PolicySetup, Setup
from .test_browser import _login, _page
from .test_incident_duties import duty_site
from .test_incidents_page import open_incident

pytestmark = pytest.mark.slow
expect = pytest.importorskip("playwright.sync_api").expect


def _count(page: Any, policy: str, action: str) -> int:
    return int(page.locator(f'td[data-policy="{policy}"][data-action="{action}"]').inner_text())


def test_admin_edits_validates_and_replays_a_draft(
    browser: Any, policy_setup: PolicySetup, shots: Path
) -> None:
    policy_setup.scrape("198.51.100.7", 30)
    context, page, watch = _page(browser)
    _login(page, policy_setup.dash, "ada")
    page.click("nav >> text=Policy")
    page.fill("#draft-text", LOWER_BUDGET.replace("= 3", '= "three"'))
    page.click("button[value=save]")
    expect(page.locator("#draft-invalid")).to_contain_text("limits.per_ip.profiles_per_hour")
    page.fill("#draft-text", LOWER_BUDGET)
    page.click("button[value=save]")
    expect(page.locator("#draft-valid")).to_be_visible()
    page.select_option("select[name=hours]", "1")
    page.click("#run-replay")
    expect(page.locator("#replay-summary")).to_be_visible()
    summary = page.locator("#replay-summary").inner_text()
    assert re.search(r"\b30 recorded requests replayed", summary), summary
    assert _count(page, "draft", "block") > _count(page, "current", "block")
    page.screenshot(path=str(shots / "dashboard-policy.png"), full_page=True)
    # The other source: every request of the sampled addresses (the form keeps the window).
    page.select_option("#replay-source", "sampled")
    page.click("#run-replay")
    expect(page.locator("#replay-summary")).to_contain_text("requests of sampled addresses replayed")
    expect(page.locator("#replay-source")).to_have_value("sampled")
    page.click("#publish")
    expect(page.locator("#published")).to_contain_text("Published to")
    assert policy_setup.policy_file.read_text(encoding="utf-8") == LOWER_BUDGET
    assert not watch.csp_violations and watch.dialogs == []
    context.close()


def test_analyst_advances_an_incident(browser: Any, setup: Setup, shots: Path) -> None:
    incident = open_incident(setup)
    context, page, watch = _page(browser)
    _login(page, setup.dash, "ana")
    page.click("nav >> text=Incidents")
    page.click(f"text={incident}")
    expect(page.locator("#stage")).to_have_text("open")
    page.select_option("#advance select[name=to]", "contained")
    page.fill("#advance input[name=note]", "address banned")
    page.click("#advance button")
    expect(page.locator("#stage")).to_have_text("contained")
    page.select_option("#assign select[name=owner]", "ana")
    page.click("#assign button")
    expect(page.locator("#owner")).to_have_text("ana")
    assert watch.dialogs == [] and not watch.csp_violations  # the hostile user agent ran nothing
    context.close()


def test_analyst_works_an_incident_filed_by_real_traffic(browser: Any, tmp_path: Path, shots: Path) -> None:
    """A scraper stopped by the site files an incident; an analyst reads its assessment and a
    draft, records the risk, marks the notice sent and downloads a bundle that verifies."""
    with duty_site(tmp_path) as site:
        site.scrape()
        incident = site.file_incident()
        context, page, watch = _page(browser)
        _login(page, site.dash, "ana")
        page.click("nav >> text=Incidents")
        page.click(f"text={incident}")
        expect(page.locator("#people-count")).to_have_text(re.compile(r"^[5-6]$"))
        assessment = page.locator("#assessment-text")
        expect(assessment).to_contain_text(f"{incident}: breach assessment")
        expect(assessment).to_contain_text("[gdpr] Notify the supervisory authority: due")
        expect(assessment).to_contain_text("not legal advice")
        # The hostile name from the people lookup is text in the table.
        expect(page.locator("table.people")).to_contain_text("<script>alert(1)</script>")

        page.select_option("#draft-choice select[name=draft]", "notice")
        page.select_option("#draft-choice select[name=person]", "u2")
        page.click("#draft-choice button")
        expect(page.locator("#draft-text")).to_contain_text("Bonjour Émile Zola,")
        page.select_option("#draft-choice select[name=draft]", "cease_and_desist")
        page.fill("#draft-choice input[name=operator]", "Scrape Co")
        page.click("#draft-choice button")
        expect(page.locator("#draft-text")).to_contain_text("Scrape Co")
        expect(page.locator("#draft-text")).to_contain_text("Example Social Ltd")

        page.select_option("#judge select[name=risk]", "high")
        page.fill("#judge input[name=note]", "names and e-mail addresses")
        page.click("#judge button")
        expect(assessment).to_contain_text("risk judgement: HIGH risk, by ana")
        notice = page.locator(f'tr[data-letter="{incident}:notice"]')
        expect(notice.locator("td.state")).to_have_text("draft")
        notice.locator("input[name=note]").fill("mail merge, 18:00")
        notice.locator("button.mark-sent").click()
        expect(page.locator(f'tr[data-letter="{incident}:notice"] td.state')).to_have_text("sent")
        page.screenshot(path=str(shots / "dashboard-incident.png"), full_page=True)

        page.fill("#export-form input[name=operator]", "Scrape Co")
        with page.expect_download() as info:
            page.click("#export-button")
        download = info.value
        saved = tmp_path / download.suggested_filename
        download.save_as(saved)
        assert saved.name == f"{incident}-evidence.zip"
        check = verify_bundle(saved)
        assert check.ok and check.files >= 10, check.problems
        assert watch.dialogs == [] and not watch.csp_violations
        context.close()


def test_viewer_reads_the_audit_log_but_changes_nothing(browser: Any, setup: Setup) -> None:
    incident = open_incident(setup)
    context, page, watch = _page(browser)
    _login(page, setup.dash, "vic")
    page.click("nav >> text=Audit")
    expect(page.locator("table.audit")).to_contain_text("incident.open")
    page.goto(f"{setup.dash}/incidents/{incident}")
    assert page.locator("#advance").count() == 0 and page.locator("#assign").count() == 0
    page.goto(setup.dash + "/policy")
    assert page.locator("textarea").count() == 0 and page.locator("#publish").count() == 0
    csrf = page.locator("input[name=csrf]").first.get_attribute("value")
    for path, form in (
        (f"/incidents/{incident}/advance", {"to": "contained"}),
        (f"/incidents/{incident}/assign", {"owner": "vic"}),
        ("/policy/draft", {"text": "mode = 'observe'"}),
        ("/policy/publish", {"sha256": "0"}),
        ("/bans/add", {"kind": "ip", "value": "203.0.113.1"}),
    ):
        answer = page.request.post(setup.dash + path, form={"csrf": csrf or "", **form}, max_redirects=0)
        assert answer.status == 403, path
    assert watch.dialogs == []
    context.close()


def test_audit_page_shows_a_row_edited_in_the_file(browser: Any, setup: Setup, shots: Path) -> None:
    open_incident(setup)
    open_incident(setup, "second")
    context, page, _ = _page(browser)
    _login(page, setup.dash, "vic")
    page.goto(setup.dash + "/audit")
    assert page.locator("#audit-status").inner_text().startswith("Chain intact: 2 entries verified")
    page.screenshot(path=str(shots / "dashboard-audit.png"), full_page=True)
    with sqlite3.connect(setup.state_url.removeprefix("sqlite:///")) as db:
        db.execute("UPDATE audit SET target = 'someone else' WHERE seq = 1")
    page.reload()
    status = page.locator("#audit-status").inner_text()
    assert status.startswith("Chain BROKEN at entry 1") and "altered" in status
    context.close()
