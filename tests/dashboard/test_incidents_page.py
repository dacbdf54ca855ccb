"""The Incidents pages over loopback HTTP: list and filters, evidence escaped, assign and advance
for analysts (audited by the book as the logged-in user), refused for viewers."""

from __future__ import annotations

import time

from scrapewarden.core.incidents import Actors, Detection
from scrapewarden.incidents.book import IncidentBook
from scrapewarden.state.sqlite import SQLiteStore

from .conftest import XSS_UA, Setup, csrf_of, login


def open_incident(setup: Setup, title: str = "people pages scraped") -> str:
    now = time.time()
    detection = Detection(
        ts=now,
        source="manual",
        verdict="block",
        actors=Actors(ips=["ip~0123abcd"], user_agents=[XSS_UA]),
        first_ts=now - 600,
        detectors={"enumeration": ["sequential ids <b>1..40</b>"]},
        records=[f"people:{i}" for i in range(40)],
        requests=40,
        samples=[
            {"ts": now, "method": "GET", "path": "/people/<script>", "user_agent": XSS_UA, "action": "block"}
        ],
        score=88.0,
    )
    with SQLiteStore(setup.state_url.removeprefix("sqlite:///")) as store:
        return IncidentBook(store).open(detection, by="system", title=title).id


def test_list_evidence_assign_advance(setup: Setup) -> None:
    first = open_incident(setup)
    second = open_incident(setup, "another")
    with login(setup.dash, "ana") as ana:
        listing = ana.get("/incidents").text
        assert first in listing and second in listing and "2 shown of 2" in listing
        page = ana.get(f"/incidents/{first}")
        assert page.status_code == 200
        assert "<script>" not in page.text and "&lt;img src=x onerror=alert(1)&gt;" in page.text
        assert 'id="records-count">40<' in page.text and "sequential ids &lt;b&gt;" in page.text
        token = csrf_of(page.text)
        assigned = ana.post(
            f"/incidents/{first}/assign", data={"csrf": token, "owner": "ana", "team": "privacy"}
        )
        assert assigned.status_code == 303
        moved = ana.post(
            f"/incidents/{first}/advance", data={"csrf": token, "to": "contained", "note": "banned"}
        )
        assert moved.status_code == 303
        page = ana.get(f"/incidents/{first}").text
        assert 'id="stage">contained<' in page and 'id="owner">ana<' in page
        back = ana.post(f"/incidents/{first}/advance", data={"csrf": token, "to": "open"})
        assert back.status_code == 400 and "only move forward" in back.text
        assert "1 shown of 2" in ana.get("/incidents", params={"owner": "ana"}).text
        assert "1 shown of 2" in ana.get("/incidents", params={"stage": "open"}).text
        assert ana.get("/incidents/nope").status_code == 404
        audit = ana.get("/api/audit", params={"actor": "ana"}).json()["entries"]
    assert [e["action"] for e in reversed(audit)] == ["incident.assign", "incident.advance"]
    assert all(e["target"] == first for e in audit)
    with login(setup.dash, "vic") as vic:
        page = vic.get(f"/incidents/{first}").text
        assert 'id="advance"' not in page and 'id="assign"' not in page
        token = csrf_of(page)
        assert vic.post(f"/incidents/{first}/advance", data={"csrf": token}).status_code == 403
        assert vic.post(f"/incidents/{first}/assign", data={"csrf": token, "owner": "vic"}).status_code == 403
        assert 'id="stage">contained<' in vic.get(f"/incidents/{first}").text
