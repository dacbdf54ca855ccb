"""A policy published on the Policy page, or changed on disk, is the dashboard's own from the next
page view or API call, without a restart: the incident page's people lookup and the letters'
reply days follow it; a file that no longer loads leaves the last good policy in force."""

from __future__ import annotations

import hashlib
import os
import time

import httpx

from scrapewarden.core.incidents import Actors, Detection
from scrapewarden.incidents.book import IncidentBook
from scrapewarden.state.sqlite import SQLiteStore

from .conftest import POLICY, PolicySetup, csrf_of, login

PEOPLE = (
    "record_id,person_id,kind,name,email\n0,u0,profile,Ada,ada@example.org\n1,u1,profile,Bo,bo@example.org\n"
)
WITH_PEOPLE = POLICY + (
    '\n[incidents.people]\nsource = "csv"\npath = "people.csv"\n'
    '\n[incidents.notices]\norganisation = "Example Ltd"\nresponse_days = 21\n'
)


def _incident(setup: PolicySetup) -> str:
    now = time.time()
    detection = Detection(
        ts=now,
        source="manual",
        verdict="block",
        actors=Actors(ips=["ip~0123abcd"]),
        first_ts=now - 600,
        detectors={"enumeration": ["sequential ids"]},
        records=[f"profile:{i}" for i in range(5)],
        requests=5,
        score=80.0,
    )
    with SQLiteStore(setup.policy_file.parent / "state.db") as store:
        return IncidentBook(store).open(detection, by="system", title="profiles scraped").id


def _reply_days(ana: httpx.Client, incident: str, token: str) -> float:
    sent = ana.post(
        f"/api/incidents/{incident}/letters",
        json={"kind": "cease-and-desist", "step": "sent"},
        headers={"x-csrf-token": token},
    )
    assert sent.status_code == 201, sent.text
    letter = sent.json()["letter"]
    return round((letter["reply_due_at"] - letter["sent_at"]) / 86400)


def test_a_published_policy_is_in_force_on_the_dashboard_at_once(policy_setup: PolicySetup) -> None:
    (policy_setup.policy_file.parent / "people.csv").write_text(PEOPLE, encoding="utf-8")
    first, second = _incident(policy_setup), _incident(policy_setup)
    with login(policy_setup.dash, "ana") as ana:
        token = csrf_of(ana.get("/incidents").text)
        assert ana.get(f"/api/incidents/{first}").json()["people"] == 0
        assert "No people lookup is configured" in ana.get(f"/incidents/{first}").text
        assert _reply_days(ana, first, token) == 7  # the default response_days

        with login(policy_setup.dash, "ada") as ada:
            admin_token = csrf_of(ada.get("/policy").text)
            ada.post("/policy/draft", data={"csrf": admin_token, "text": WITH_PEOPLE})
            digest = hashlib.sha256(WITH_PEOPLE.encode()).hexdigest()
            published = ada.post("/policy/publish", data={"csrf": admin_token, "sha256": digest})
            assert published.status_code == 303

        # Same dashboard process, no restart: the people lookup and the reply days are the new ones.
        detail = ana.get(f"/api/incidents/{first}").json()
        assert detail["people"] == 2 and detail["unknown_records"] == 3
        page = ana.get(f"/incidents/{first}").text
        assert "No people lookup is configured" not in page and 'id="people-count">2<' in page
        assert _reply_days(ana, second, token) == 21


def test_a_file_changed_on_disk_is_followed_and_a_broken_one_is_not(policy_setup: PolicySetup) -> None:
    (policy_setup.policy_file.parent / "people.csv").write_text(PEOPLE, encoding="utf-8")
    incident = _incident(policy_setup)
    with login(policy_setup.dash, "vic") as vic:
        assert vic.get(f"/api/incidents/{incident}").json()["people"] == 0
        policy_setup.policy_file.write_text(WITH_PEOPLE, encoding="utf-8")
        assert vic.get(f"/api/incidents/{incident}").json()["people"] == 2

        # A file that does not load: logged, and the last good policy stays in force.
        policy_setup.policy_file.write_text(WITH_PEOPLE + "\n[limits\n", encoding="utf-8")
        assert vic.get(f"/api/incidents/{incident}").json()["people"] == 2
        assert vic.get(f"/incidents/{incident}").status_code == 200
        said = vic.get("/policy").text
        assert 'id="reload-error"' in said and "keeps the policy it had" in said

        # Fixed again (with a fresh modification time, whatever the file system's clock grain).
        policy_setup.policy_file.write_text(POLICY, encoding="utf-8")
        later = time.time_ns() + 5_000_000_000
        os.utime(policy_setup.policy_file, ns=(later, later))
        assert vic.get(f"/api/incidents/{incident}").json()["people"] == 0
        assert 'id="reload-error"' not in vic.get("/policy").text
