"""Operator allows on the dashboard over real HTTP on loopback: roles, CSRF, the pseudonym check,
audit entries, the JSON API, and the site's own Warden letting an allowed actor through."""

from __future__ import annotations

import time

import httpx

from scrapewarden.dashboard.accounts import make_token
from scrapewarden.state.sqlite import SQLiteStore

from .conftest import BOT_UA, Setup, csrf_of, login


def _wait_for_status(setup: Setup, address: str, want: int) -> int:
    """Ask the site (as a bot) until it answers ``want``: allows reach a running Warden with its
    next ban reload (~2 s)."""
    deadline = time.monotonic() + 10
    code = 0
    while time.monotonic() < deadline:
        code = setup.traffic(address, "/people/1", ua=BOT_UA)[0]
        if code == want:
            return code
        time.sleep(0.25)
    return code


def _store(setup: Setup) -> SQLiteStore:
    return SQLiteStore(setup.state_url.removeprefix("sqlite:///"))


def test_viewer_sees_no_allow_controls_and_is_refused(setup: Setup) -> None:
    address = "198.51.100.44"
    setup.traffic(address, "/people/1", ua=BOT_UA)
    with login(setup.dash, "ana") as analyst:
        page = analyst.get("/actors", params={"kind": "ip", "q": address})
        analyst.post(
            "/actors/allow",
            data={
                "csrf": csrf_of(page.text),
                "kind": "ip",
                "q": address,
                "value": "192.0.2.200",
                "ttl": "3600",
            },
        )
    with login(setup.dash, "vic") as client:
        page = client.get("/actors", params={"kind": "ip", "q": address})
        assert page.status_code == 200 and "python-requests" in page.text
        assert 'id="allow-form"' not in page.text and "/actors/allow" not in page.text
        bans = client.get("/bans").text
        assert "192.0.2.200" in bans and "Lift allow" not in bans  # listed, not liftable
        token = csrf_of(page.text)
        refused = client.post(
            "/actors/allow", data={"csrf": token, "kind": "ip", "q": address, "value": address, "ttl": "3600"}
        )
        assert refused.status_code == 403
        lift = client.post("/allows/lift", data={"csrf": token, "kind": "ip", "value": "192.0.2.200"})
        assert lift.status_code == 403
        api = client.post(
            "/api/allows", json={"kind": "ip", "value": address}, headers={"x-csrf-token": token}
        )
        assert api.status_code == 403
        assert client.delete("/api/allows", params={"kind": "ip", "value": "192.0.2.200"}).status_code == 403
        assert [a["value"] for a in client.get("/api/allows").json()["allows"]] == ["192.0.2.200"]
    with _store(setup) as store:
        assert [a.value for a in store.list_allows()] == ["192.0.2.200"]
        assert [e.actor for e in store.audit_entries() if e.action.startswith("allow.")] == ["ana"]


def test_analyst_allows_from_the_actor_page_and_the_site_lets_it_through(setup: Setup) -> None:
    address = "203.0.113.66"
    assert setup.traffic(address, "/people/1", ua=BOT_UA) == [403]
    with login(setup.dash, "ana") as client:
        page = client.get("/actors", params={"kind": "ip", "q": address})
        assert 'id="allow-form"' in page.text
        answer = client.post(
            "/actors/allow",
            data={
                "csrf": csrf_of(page.text),
                "kind": "ip",
                "q": address,
                "value": address,
                "ttl": "3600",
                "note": "research contract <b>",
            },
        )
        assert answer.status_code == 303 and answer.headers["location"].endswith("done=allowed")
        after = client.get(answer.headers["location"])
        assert "Allowed by an operator" in after.text and "research contract &lt;b&gt; [by ana]" in after.text
        assert 'id="lift-allow"' in after.text
    assert _wait_for_status(setup, address, 200) == 200
    # Still counted and recorded: the timeline says why the request passed.
    with login(setup.dash, "ana") as client:
        page = client.get("/actors", params={"kind": "ip", "q": address})
        assert "allowed by an operator (ip), overriding challenge" in page.text
        bans = client.get("/bans")
        assert address in bans.text and "Operator allows in force" in bans.text
        lifted = client.post(
            "/allows/lift", data={"csrf": csrf_of(bans.text), "kind": "ip", "value": address}
        )
        assert lifted.status_code == 303 and lifted.headers["location"].endswith("done=allow-lifted")
        again = client.post("/allows/lift", data={"csrf": csrf_of(bans.text), "kind": "ip", "value": address})
        assert again.headers["location"].endswith("done=allow-not-found")
    assert _wait_for_status(setup, address, 403) == 403
    with _store(setup) as store:
        entries = [
            (e.actor, e.action, e.target) for e in store.audit_entries() if e.action.startswith("allow.")
        ]
        (added,) = [e for e in store.audit_entries() if e.action == "allow.add"]
    assert entries == [("ana", "allow.add", f"ip:{address}"), ("ana", "allow.remove", f"ip:{address}")]
    assert added.details["reason"] == "research contract <b> [by ana]"
    assert added.details["expires"] is not None


def test_allow_needs_its_csrf_token(setup: Setup) -> None:
    with login(setup.dash, "ana") as client:
        form = {"kind": "ip", "value": "203.0.113.5", "ttl": "3600"}
        assert client.post("/actors/allow", data=form).status_code == 403
        assert client.post("/actors/allow", data={**form, "csrf": "0" * 64}).status_code == 403
        assert client.post("/api/allows", json={"kind": "ip", "value": "203.0.113.5"}).status_code == 403
    with _store(setup) as store:
        assert store.list_allows() == []


def test_allow_by_pseudonym_needs_the_matching_real_value(setup: Setup) -> None:
    setup.traffic("203.0.113.88", "/.env")
    pseudonym = setup.site_warden.pseudonymizer.ip("203.0.113.88")
    with login(setup.dash, "ana") as client:
        page = client.get("/actors", params={"kind": "ip", "q": pseudonym})
        assert page.text.count('name="expect"') == 2  # the ban form and the allow form
        form = {"csrf": csrf_of(page.text), "kind": "ip", "q": pseudonym, "expect": pseudonym, "ttl": "0"}
        wrong = client.post("/actors/allow", data={**form, "value": "203.0.113.89"})
        assert wrong.status_code == 400 and "not the actor" in wrong.text
        right = client.post("/actors/allow", data={**form, "value": "203.0.113.88"})
        assert right.status_code == 303
        (listed,) = client.get("/api/allows").json()["allows"]
        assert (listed["value"], listed["expires"], listed["by"]) == ("203.0.113.88", None, "ana")


def test_the_allows_api(setup: Setup) -> None:
    with _store(setup) as store:
        analyst = make_token(store, "ana", now=time.time(), ttl=3600).token
    with httpx.Client(base_url=setup.dash, timeout=10) as client:
        auth = {"authorization": f"Bearer {analyst}"}
        made = client.post(
            "/api/allows",
            headers=auth,
            json={"kind": "account", "value": "partner-7", "ttl_seconds": 600, "reason": "contract 12"},
        )
        assert made.status_code == 201
        body = made.json()
        assert (body["kind"], body["value"], body["reason"], body["by"], body["active"]) == (
            "account",
            "partner-7",
            "contract 12 [by ana]",
            "ana",
            True,
        )
        assert 590 < body["expires"] - body["created"] <= 600
        for bad in (
            {"kind": "ip", "value": "not an address"},
            {"kind": "cookie", "value": "x"},
            {"kind": "ip", "value": "192.0.2.1", "ttl_seconds": "soon"},
            {"kind": "ip", "value": 7},
            [1, 2],
        ):
            assert client.post("/api/allows", headers=auth, json=bad).status_code == 400, bad
        assert client.get("/api/allows", headers=auth, params={"kind": "cookie"}).status_code == 400
        listed = client.get("/api/allows", headers=auth, params={"kind": "account"}).json()["allows"]
        assert [a["value"] for a in listed] == ["partner-7"]
        assert client.get("/api/allows", headers=auth, params={"kind": "ip"}).json()["allows"] == []
        gone = client.delete("/api/allows", headers=auth, params={"kind": "account", "value": "partner-7"})
        assert gone.status_code == 204
        again = client.delete("/api/allows", headers=auth, params={"kind": "account", "value": "partner-7"})
        assert again.status_code == 404
        assert client.get("/api/allows", headers=auth).json() == {"allows": []}
        assert "/api/allows" in client.get("/api/openapi.json").json()["paths"]
    with _store(setup) as store:
        assert [(e.actor, e.action) for e in store.audit_entries()] == [
            ("ana", "allow.add"),
            ("ana", "allow.remove"),
        ]
