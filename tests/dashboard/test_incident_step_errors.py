"""A letter step or a risk judgement the incident cannot take shows the incident page again, with
the reason beside the form that was refused and what was typed kept (escaped), status 400;
nothing is recorded or audited."""

from __future__ import annotations

import re

from .conftest import XSS_UA, Setup, csrf_of, login
from .test_incidents_page import open_incident


def _error(html: str, element_id: str) -> str:
    found = re.search(rf'<p class="error" role="alert" id="{element_id}">([^<]*)</p>', html)
    assert found, f"no #{element_id} on the page"
    return found.group(1)


def test_an_impossible_letter_step_is_said_on_the_incident_page(setup: Setup) -> None:
    incident = open_incident(setup)
    with login(setup.dash, "ana") as ana:
        token = csrf_of(ana.get(f"/incidents/{incident}").text)
        before = ana.get("/api/audit", params={"actor": "ana"}).json()["entries"]
        answered = ana.post(
            f"/incidents/{incident}/letters",
            data={"csrf": token, "kind": "cease-and-desist", "step": "replied", "note": XSS_UA},
        )
        assert answered.status_code == 400
        page = answered.text
        assert f'<h1>Incident <span class="mono">{incident}</span></h1>' in page  # the page, not a bare error
        assert _error(page, "letter-error") == f"letter {incident}:cease_and_desist was never sent"
        # In place: inside the letters section, after its heading.
        assert page.index('id="letters"') < page.index('id="letter-error"') < page.index('id="track-letter"')
        # What was typed is kept, escaped, in the form.
        assert (
            '<option value="replied" selected>' in page
            and '<option value="cease-and-desist" selected>' in page
        )
        assert 'value="&lt;img src=x onerror=alert(1)&gt;"' in page and "<img src=x" not in page

        unknown = ana.post(
            f"/incidents/{incident}/letters", data={"csrf": token, "kind": "ode", "step": "sent"}
        )
        assert unknown.status_code == 400 and "kind must be one of" in _error(unknown.text, "letter-error")

        judged = ana.post(
            f"/incidents/{incident}/judge", data={"csrf": token, "risk": "sideways", "note": "hm"}
        )
        assert judged.status_code == 400
        assert _error(judged.text, "assessment-error") == "choose high or low risk"
        assert 'id="letter-error"' not in judged.text

        assert ana.get("/api/audit", params={"actor": "ana"}).json()["entries"] == before
        assert ana.get(f"/api/incidents/{incident}").json()["letters"] == []
        # A step that fits is still recorded (the page's own flow is unchanged).
        sent = ana.post(
            f"/incidents/{incident}/letters", data={"csrf": token, "kind": "cease-and-desist", "step": "sent"}
        )
        assert sent.status_code == 303 and sent.headers["location"].endswith("?done=letter#letters")
        assert (
            ana.post("/incidents/INC-nope/letters", data={"csrf": token, "kind": "notice"}).status_code == 404
        )
