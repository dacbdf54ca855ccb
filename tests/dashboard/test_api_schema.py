"""schemathesis against the live JSON API: every answer must match /api/openapi.json.

Generated requests (hypothesis, positive and negative data) go over loopback HTTP to a
dashboard with an admin's bearer token, on a store holding events and bans, so the response
schemas are checked against real content. Checks: no server error, every status and content
type documented, every body valid against its schema.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from scrapewarden.core.incidents import Actors, Detection
from scrapewarden.dashboard.accounts import add_user, make_token
from scrapewarden.dashboard.api import OPENAPI
from scrapewarden.dashboard.app import create_app
from scrapewarden.incidents.book import IncidentBook
from scrapewarden.incidents.duties import assess_incident
from scrapewarden.state.base import Ban

from .conftest import BOT_UA, PASSWORD, serve

POLICY = """\
[[protected]]
pattern = "/people/{id}"
kind = "profile"
categories = ["name"]

[incidents.people]
source = "csv"
path = "people.csv"
"""
INCIDENTS = ("INC-20261127-0000a1", "INC-20261127-0000b2")
"""The second is judged high-risk, so it tracks letters; generated ids never hit either."""
PEOPLE_CSV = "record_id,person_id,kind,name,country\n1,u1,profile,Ada <b>,GB\n2,u2,profile,Émile,FR\n"

schema = schemathesis.openapi.from_dict(OPENAPI)
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    folder: Path = tmp_path_factory.mktemp("api")
    # A policy file with a people lookup, so the incident and policy routes answer with content.
    (folder / "people.csv").write_text(PEOPLE_CSV, encoding="utf-8")
    (folder / "policy.toml").write_text(POLICY, encoding="utf-8")
    app = create_app(f"sqlite:///{folder}/state.db", policy=folder / "policy.toml")
    dash = app.state.dashboard
    now = time.time()
    add_user(dash.store, "ada", "admin", PASSWORD, now=now)
    ids = iter(INCIDENTS)
    book = IncidentBook(dash.store, new_id=lambda now: next(ids))
    for title in ("people pages scraped", "a <b>second</b> one"):
        detection = Detection(
            ts=now,
            source="manual",
            verdict="block",
            actors=Actors(ips=["ip~0123abcd"], user_agents=[BOT_UA]),
            records=["profile:1", "profile:2", "profile:404"],
            samples=[{"ts": now, "method": "GET", "path": "/people/1", "user_agent": BOT_UA}],
        )
        incident = book.open(detection, by="system", title=title)
    assessment = assess_incident(incident, dash.warden.policy, base_dir=folder, high_risk=True)[2]
    book.judge(incident.id, True, by="ada", assessment=assessment)
    token = make_token(dash.store, "ada", now=now, ttl=3600).token
    warden = dash.warden
    for i in range(20):  # events to summarise and search: challenged bot requests
        headers = [(b"user-agent", BOT_UA.encode()), (b"accept", b"text/html")]
        warden.decide_http(
            peer=f"192.0.2.{i % 4}", method="GET", path=f"/people/{i}", query="", headers=headers
        )
    dash.store.add_ban(Ban("ip", "192.0.2.1", now, now + 600, "test", source="operator"))
    dash.store.add_ban(Ban("account", "acct <9>", now, None, "hostile \u202e text"))
    warden.ban("ip", "192.0.2.9", ttl=600, reason="audited <b>", by="ada")
    warden.allow("account", "partner <7>", ttl=600, reason="contract \u202e", by="ada")
    dash.store.flush()
    served = serve(app)
    try:
        yield served.url, token
    finally:
        served.stop()
        dash.close()


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_matches_its_openapi_document(case: Any, live: tuple[str, str]) -> None:
    base, token = live
    case.call_and_validate(base_url=base, headers={"authorization": f"Bearer {token}"}, checks=CHECKS)


def test_served_document_is_the_tested_one(live: tuple[str, str]) -> None:
    base, _ = live
    served = httpx.get(base + "/api/openapi.json", timeout=10)
    assert served.status_code == 200 and served.json() == OPENAPI
    assert set(OPENAPI["paths"]) == {
        "/api/me",
        "/api/summary",
        "/api/events",
        "/api/actors",
        "/api/bans",
        "/api/users",
        "/api/audit",
        "/api/incidents",
        "/api/incidents/{incident_id}",
        "/api/incidents/{incident_id}/advance",
        "/api/incidents/{incident_id}/assign",
        "/api/incidents/{incident_id}/assess",
        "/api/incidents/{incident_id}/export",
        "/api/incidents/{incident_id}/letters",
        "/api/policy",
        "/api/policy/validate",
        "/api/allows",
        "/api/rates",
    }


def test_incident_and_policy_routes_on_real_ids_match_the_document(live: tuple[str, str]) -> None:
    """Generated ids are unknown (404): here each incident route answers about a real one, and
    each answer is checked against the document as above."""
    base, token = live
    headers = {"authorization": f"Bearer {token}"}
    first, judged = INCIDENTS
    calls: list[tuple[str, str, dict[str, Any], Any, int]] = [
        ("/api/incidents", "GET", {}, None, 200),
        ("/api/incidents/{incident_id}", "GET", {"incident_id": judged}, None, 200),
        ("/api/incidents/{incident_id}/advance", "POST", {"incident_id": first}, {"to": "contained"}, 200),
        ("/api/incidents/{incident_id}/advance", "POST", {"incident_id": first}, {"to": "open"}, 400),
        ("/api/incidents/{incident_id}/assign", "POST", {"incident_id": first}, {"owner": "ada"}, 200),
        ("/api/incidents/{incident_id}/letters", "POST", {"incident_id": judged}, LETTER, 201),
        ("/api/incidents/{incident_id}/letters", "POST", {"incident_id": judged}, LETTER, 400),
        ("/api/incidents/{incident_id}/assess", "POST", {"incident_id": first}, {"risk": "low"}, 200),
        ("/api/incidents/{incident_id}/assess", "POST", {"incident_id": first}, {"risk": "mid"}, 400),
        ("/api/incidents/{incident_id}/export", "GET", {"incident_id": judged}, None, 200),
        ("/api/policy", "GET", {}, None, 200),
        ("/api/policy/validate", "POST", {}, {"text": "mode = 'observe'"}, 200),
        ("/api/policy/validate", "POST", {}, {"text": "[limits.per_ip]\nprofiles_per_hour = 'x'"}, 200),
    ]
    for path, method, params, body, status in calls:
        operation = schema[path][method]
        case = operation.Case(path_parameters=params or None, **({"body": body} if body is not None else {}))
        response = case.call_and_validate(base_url=base, headers=headers, checks=CHECKS)
        assert response.status_code == status, (path, body, response.text[:300])
    # An actor with an operator allow (made in the fixture), and an export with the operator named.
    for path, params, query in (
        ("/api/actors", None, {"kind": "account", "q": "partner <7>"}),
        ("/api/incidents/{incident_id}/export", {"incident_id": first}, {"operator": "Example <Ltd>"}),
    ):
        case = schema[path]["GET"].Case(path_parameters=params, query=query)
        response = case.call_and_validate(base_url=base, headers=headers, checks=CHECKS)
        assert response.status_code == 200, (path, response.text[:300])
        if path == "/api/actors":
            assert [a["by"] for a in response.json()["allows"]] == ["ada"]


LETTER = {"kind": "notice", "step": "sent", "note": "by e-mail"}
