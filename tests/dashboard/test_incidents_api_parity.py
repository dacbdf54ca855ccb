"""The API does what the incident and actor pages do: ``POST /api/incidents/{id}/assess`` records
the risk judgement (analyst, audited ``incident.assess``), ``GET /api/incidents/{id}/export``
hands out the evidence bundle (analyst, audited ``incident.export``; a session call needs its
CSRF header), and ``/api/actors`` shows the actor's operator allow. Over loopback HTTP."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import httpx

from scrapewarden.incidents.bundle import verify_bundle

from .conftest import Setup, csrf_of, login
from .test_incidents_api import _token
from .test_incidents_page import open_incident


def test_assess_export_and_an_actors_allow(setup: Setup, tmp_path: Path) -> None:
    incident = open_incident(setup)
    viewer = {"authorization": f"Bearer {_token(setup.state_url, 'vic')}"}
    analyst = {"authorization": f"Bearer {_token(setup.state_url, 'ana')}"}
    with httpx.Client(base_url=setup.dash, timeout=30) as http:
        # The judgement: viewers may not; a bad risk is refused; a good one plans the letters.
        judgement = {"risk": "high", "note": "names and <b>emails</b>"}
        assert (
            http.post(f"/api/incidents/{incident}/assess", headers=viewer, json=judgement).status_code == 403
        )
        bad = http.post(f"/api/incidents/{incident}/assess", headers=analyst, json={"risk": "mid"})
        assert bad.status_code == 400 and "high or low" in bad.json()["detail"]
        assert http.post("/api/incidents/INC-nope/assess", headers=analyst, json=judgement).status_code == 404
        judged = http.post(f"/api/incidents/{incident}/assess", headers=analyst, json=judgement)
        assert judged.status_code == 200, judged.text
        risk = judged.json()["incident"]["risk"]
        assert risk["high_risk"] is True and risk["by"] == "ana" and risk["note"] == "names and <b>emails</b>"
        assert http.get(f"/api/incidents/{incident}", headers=viewer).json()["incident"]["risk"] == risk
        assert (
            judged.json()["letters"]
            == http.get(f"/api/incidents/{incident}", headers=viewer).json()["letters"]
        )

        # The bundle: analysts only, a real zip whose manifest checks out, the operator named.
        assert http.get(f"/api/incidents/{incident}/export", headers=viewer).status_code == 403
        assert http.get("/api/incidents/INC-nope/export", headers=analyst).status_code == 404
        refused = http.get(
            f"/api/incidents/{incident}/export", headers=analyst, params={"operator": "a\x07b"}
        )
        assert refused.status_code == 400
        bundle = http.get(
            f"/api/incidents/{incident}/export", headers=analyst, params={"operator": "Example Ltd"}
        )
        assert bundle.status_code == 200 and bundle.headers["content-type"] == "application/zip"
        assert bundle.headers["content-disposition"] == f'attachment; filename="{incident}-evidence.zip"'
        saved = tmp_path / "bundle.zip"
        saved.write_bytes(bundle.content)
        assert verify_bundle(saved).ok
        with zipfile.ZipFile(io.BytesIO(bundle.content)) as archive:
            assert "manifest.json" in archive.namelist()

    with login(setup.dash, "ana") as ana:
        token = csrf_of(ana.get("/incidents").text)
        # A session call writes to the audit log too: without its CSRF header it is refused.
        assert ana.get(f"/api/incidents/{incident}/export").status_code == 403
        assert (
            ana.get(f"/api/incidents/{incident}/export", headers={"x-csrf-token": token}).status_code == 200
        )
        audit = ana.get("/api/audit", params={"actor": "ana"}).json()["entries"]
        assert [(e["action"], e["target"]) for e in reversed(audit)] == [
            ("incident.assess", incident),
            ("incident.export", incident),
            ("incident.export", incident),
        ]

        # The actor page shows an operator allow; so does the API now.
        assert (
            ana.post(
                "/api/allows",
                json={"kind": "ip", "value": "198.51.100.7", "ttl_seconds": 600, "reason": "partner"},
                headers={"x-csrf-token": token},
            ).status_code
            == 201
        )
        found = ana.get("/api/actors", params={"kind": "ip", "q": "198.51.100.7"}).json()
        [allow] = found["allows"]
        assert allow["value"] == "198.51.100.7" and allow["by"] == "ana" and allow["active"] is True
        assert "partner" in allow["reason"]
        assert ana.get("/api/actors", params={"kind": "ip", "q": "198.51.100.8"}).json()["allows"] == []
