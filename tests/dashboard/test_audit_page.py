"""The audit page and /api/audit over loopback HTTP: the dashboard's own changes are audited with
the logged-in user as actor, filters and verification work, hostile text is escaped."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from .conftest import Setup, csrf_of, login


def _db(setup: Setup) -> Path:
    return Path(setup.state_url.removeprefix("sqlite:///"))


def test_dashboard_changes_are_audited_as_the_user(setup: Setup) -> None:
    with login(setup.dash, "ana") as ana:
        token = csrf_of(ana.get("/bans").text)
        note = "<script>alert(1)</script>"
        added = ana.post(
            "/bans/add",
            data={"csrf": token, "kind": "ip", "value": "203.0.113.5", "ttl": "3600", "note": note},
        )
        assert added.status_code == 303
        lifted = ana.post("/bans/lift", data={"csrf": token, "kind": "ip", "value": "203.0.113.5"})
        assert lifted.status_code == 303
    with login(setup.dash, "ada") as ada:
        token = csrf_of(ada.get("/users").text)
        made = ada.post(
            "/users/change",
            data={
                "csrf": token,
                "action": "add",
                "name": "zed",
                "role": "viewer",
                "password": "a long password 123",
            },
        )
        assert made.status_code == 303
        ada.post("/users/change", data={"csrf": token, "action": "role", "name": "zed", "role": "analyst"})
        ada.post("/users/change", data={"csrf": token, "action": "remove", "name": "zed"})
        body = ada.get("/api/audit", headers={}).json()
    assert body["verification"]["ok"] is True
    got = [(e["actor"], e["action"], e["target"]) for e in reversed(body["entries"])]
    assert got == [
        ("ana", "ban.add", "ip:203.0.113.5"),
        ("ana", "ban.remove", "ip:203.0.113.5"),
        ("ada", "user.add", "zed"),
        ("ada", "user.role", "zed"),
        ("ada", "user.remove", "zed"),
    ]
    with login(setup.dash, "vic") as vic:
        page = vic.get("/audit")
        assert page.status_code == 200
        assert "Chain intact: 5 entries verified" in page.text
        assert "<script>alert(1)" not in page.text and "&lt;script&gt;" in page.text
        only = vic.get("/audit", params={"actor": "ana", "action": "ban.remove"}).text
        assert "1 of 5 entries" in only
        api = vic.get("/api/audit", params={"action": "user.", "limit": "2", "page": "2"}).json()
        assert (
            api["matched"] == 3
            and api["pages"] == 2
            and [e["action"] for e in api["entries"]] == ["user.add"]
        )
        assert vic.get("/api/audit", params={"limit": "0"}).status_code == 400


def test_a_row_edited_in_the_file_shows_as_broken(setup: Setup) -> None:
    with login(setup.dash, "ana") as ana:
        token = csrf_of(ana.get("/bans").text)
        for last in (1, 2, 3):
            ana.post(
                "/bans/add", data={"csrf": token, "kind": "ip", "value": f"203.0.113.{last}", "ttl": "3600"}
            )
        assert "Chain intact: 3 entries verified" in ana.get("/audit").text
        with sqlite3.connect(_db(setup)) as db:
            db.execute("UPDATE audit SET actor = 'mallory' WHERE seq = 2")
        page = ana.get("/audit").text
        assert "Chain BROKEN at entry 2" in page
        verification = ana.get("/api/audit").json()["verification"]
        assert (
            verification["ok"] is False and verification["broken_seq"] == 2 and verification["verified"] == 1
        )
