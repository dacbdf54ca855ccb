"""``/api/incidents`` and ``/api/policy`` over loopback HTTP: roles enforced (viewers read, analysts
act), bearer tokens and sessions (with the CSRF header), every change audited with the caller as
actor, the policy's text, hash and versions, and a draft's errors with key and line."""

from __future__ import annotations

import hashlib
import time

import httpx

from scrapewarden.dashboard.accounts import make_token
from scrapewarden.state.sqlite import SQLiteStore

from .conftest import LOWER_BUDGET, POLICY, PolicySetup, Setup, csrf_of, login
from .test_incidents_page import open_incident


def _token(state_url: str, name: str) -> str:
    with SQLiteStore(state_url.removeprefix("sqlite:///")) as store:
        return make_token(store, name, now=time.time(), ttl=3600).token


def test_viewers_read_analysts_act_and_every_change_is_audited(setup: Setup) -> None:
    first = open_incident(setup)
    second = open_incident(setup, "another")
    viewer = {"authorization": f"Bearer {_token(setup.state_url, 'vic')}"}
    analyst = {"authorization": f"Bearer {_token(setup.state_url, 'ana')}"}
    with httpx.Client(base_url=setup.dash, timeout=10) as http:
        assert http.get("/api/incidents").status_code == 401
        listed = http.get("/api/incidents", headers=viewer).json()["incidents"]
        assert {i["id"] for i in listed} == {first, second}
        detail = http.get(f"/api/incidents/{first}", headers=viewer).json()
        assert detail["incident"]["records_count"] == 40 and detail["incident"]["stage"] == "open"
        # No people lookup in this policy: the records are unknown, the assessment still made.
        assert detail["people"] == 0 and detail["unknown_records"] == 40
        assert detail["assessment"]["records"] == 40 and detail["assessment_error"] == ""
        assert detail["letters"] == []
        assert http.get("/api/incidents/INC-nope", headers=viewer).status_code == 404
        assert http.get("/api/incidents", headers=viewer, params={"stage": "sideways"}).status_code == 400

        for path, body in (
            ("advance", {"to": "contained"}),
            ("assign", {"owner": "vic"}),
            ("letters", {"kind": "cease-and-desist", "step": "sent"}),
        ):
            refused = http.post(f"/api/incidents/{first}/{path}", headers=viewer, json=body)
            assert refused.status_code == 403, path

        moved = http.post(
            f"/api/incidents/{first}/advance", headers=analyst, json={"to": "contained", "note": "ban"}
        )
        assert moved.status_code == 200 and moved.json()["incident"]["stage"] == "contained"
        back = http.post(f"/api/incidents/{first}/advance", headers=analyst, json={"to": "open"})
        assert back.status_code == 400 and "only move forward" in back.json()["detail"]
        owned = http.post(
            f"/api/incidents/{first}/assign", headers=analyst, json={"owner": "ana", "team": "dpo"}
        )
        assert owned.status_code == 200 and owned.json()["incident"]["owner"] == "ana"
        assert http.post(f"/api/incidents/{first}/assign", headers=analyst, json={}).status_code == 400
        assert (
            http.post(f"/api/incidents/{first}/assign", headers=analyst, json={"owner": "<x>"}).status_code
            == 400
        )
        sent = http.post(
            f"/api/incidents/{first}/letters",
            headers=analyst,
            json={"kind": "cease-and-desist", "step": "sent", "recipient": "Scrape Co", "note": "by post"},
        )
        assert sent.status_code == 201, sent.text
        letter = sent.json()["letter"]
        assert letter["state"] == "awaiting reply" and letter["sent_by"] == "ana"
        # The policy's response_days (7 by default) from when it was sent.
        assert abs(letter["reply_due_at"] - letter["sent_at"] - 7 * 86400) < 1
        assert letter["overdue"] is None
        twice = http.post(
            f"/api/incidents/{first}/letters",
            headers=analyst,
            json={"kind": "cease-and-desist", "step": "sent"},
        )
        assert twice.status_code == 400 and "already sent" in twice.json()["detail"]
        bad = http.post(
            f"/api/incidents/{first}/letters", headers=analyst, json={"kind": "ode", "step": "sent"}
        )
        assert bad.status_code == 400
        assert http.post(f"/api/incidents/{first}/letters", headers=analyst, json=[1]).status_code == 400
        assert http.post("/api/incidents/INC-nope/letters", headers=analyst, json=LETTER).status_code == 404
        listed = http.get("/api/incidents", headers=viewer, params={"owner": "ana"}).json()["incidents"]
        assert [i["id"] for i in listed] == [first] and listed[0]["letters"] == 1
        assert [
            i["id"] for i in http.get("/api/incidents?stage=open", headers=viewer).json()["incidents"]
        ] == [second]
        shown = http.get(f"/api/incidents/{first}", headers=viewer).json()["letters"]
        assert [(x["kind"], x["recipient"], x["state"]) for x in shown] == [
            ("cease_and_desist", "Scrape Co", "awaiting reply")
        ]

    # A logged-in browser session: the CSRF header is needed for a change.
    with login(setup.dash, "ana") as ana:
        token = csrf_of(ana.get("/incidents").text)
        assert ana.post(f"/api/incidents/{second}/advance", json={}).status_code == 403
        done = ana.post(f"/api/incidents/{second}/advance", json={}, headers={"x-csrf-token": token})
        assert done.status_code == 200 and done.json()["incident"]["stage"] == "contained"
        audit = ana.get("/api/audit", params={"actor": "ana"}).json()["entries"]
    assert [(e["action"], e["target"]) for e in reversed(audit)] == [
        ("incident.advance", first),
        ("incident.assign", first),
        ("letter.sent", first),
        ("incident.advance", second),
    ]


LETTER = {"kind": "notice", "step": "sent"}


def test_policy_text_hash_versions_and_a_drafts_errors(policy_setup: PolicySetup) -> None:
    state_url = f"sqlite:///{policy_setup.policy_file.parent}/state.db"
    viewer = {"authorization": f"Bearer {_token(state_url, 'vic')}"}
    with login(policy_setup.dash, "ada") as ada:  # publish one version through the page
        token = csrf_of(ada.get("/policy").text)
        assert ada.post("/policy/draft", data={"csrf": token, "text": LOWER_BUDGET}).status_code == 303
        digest = hashlib.sha256(LOWER_BUDGET.encode()).hexdigest()
        assert ada.post("/policy/publish", data={"csrf": token, "sha256": digest}).status_code == 303
    with httpx.Client(base_url=policy_setup.dash, timeout=10) as http:
        assert http.get("/api/policy").status_code == 401
        policy = http.get("/api/policy", headers=viewer).json()
        assert policy["text"] == LOWER_BUDGET and policy["sha256"] == digest
        assert policy["path"] == str(policy_setup.policy_file.resolve())
        assert [(v["by"], v["sha256"], v["text"]) for v in policy["versions"]] == [
            ("ada", digest, LOWER_BUDGET)
        ]

        ok = http.post("/api/policy/validate", headers=viewer, json={"text": POLICY}).json()
        assert ok == {"ok": True, "sha256": hashlib.sha256(POLICY.encode()).hexdigest(), "errors": []}
        broken = POLICY + '\n[limits.per_ip]\nprofiles_per_hour = "three"\n'
        found = http.post("/api/policy/validate", headers=viewer, json={"text": broken}).json()
        assert found["ok"] is False
        [error] = found["errors"]
        assert error["key"] == "limits.per_ip.profiles_per_hour"
        assert error["line"] == broken.splitlines().index('profiles_per_hour = "three"') + 1
        assert http.post("/api/policy/validate", headers=viewer, json={"txt": ""}).status_code == 400
        too_big = {"text": "#" * 70_000}
        assert http.post("/api/policy/validate", headers=viewer, json=too_big).status_code == 413
        # Validating changed nothing.
        assert policy_setup.policy_file.read_text(encoding="utf-8") == LOWER_BUDGET
