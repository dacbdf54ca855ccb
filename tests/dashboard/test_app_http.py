"""The dashboard over real HTTP on loopback: logins, roles, CSRF, bans enforced by the site's Warden."""

from __future__ import annotations

import re
import time

import httpx
import pytest

from scrapewarden.dashboard.api import OPENAPI
from scrapewarden.dashboard.app import create_app
from scrapewarden.dashboard.login_guard import LoginBudget
from scrapewarden.state.sqlite import SQLiteStore

from .conftest import BOT_UA, PASSWORD, XSS_UA, Setup, csrf_of, login, serve

PAGES = ["/", "/overview/live", "/actors", "/actors?kind=ip&q=203.0.113.7", "/bans", "/bans/export",
         "/users", "/incidents", "/policy", "/audit"]  # fmt: skip
API = [
    "/api/me",
    "/api/summary",
    "/api/events",
    "/api/actors?kind=ip&q=203.0.113.7",
    "/api/bans",
    "/api/users",
    "/api/audit",
]


def _wait_for_status(setup: Setup, address: str, path: str, want: int) -> int:
    """Ask the site until it answers ``want`` (bans reach a running Warden within ~2 s)."""
    deadline = time.monotonic() + 10
    code = 0
    while time.monotonic() < deadline:
        code = setup.traffic(address, path)[0]
        if code == want:
            return code
        time.sleep(0.25)
    return code


def test_every_page_sends_strangers_to_login_and_the_api_answers_401(setup: Setup) -> None:
    with httpx.Client(base_url=setup.dash, timeout=10) as client:
        for path in PAGES:
            answer = client.get(path)
            assert answer.status_code == 303, path
            assert answer.headers["location"].startswith("/login?next="), path
        for path in API:
            answer = client.get(path)
            assert answer.status_code == 401, path
            assert answer.json()["error"] == "unauthenticated"
            assert answer.headers["www-authenticate"].startswith("Bearer")
        # State changes from a stranger are refused too, never performed.
        assert client.post("/bans/add", data={"kind": "ip", "value": "203.0.113.9"}).status_code == 303
        assert client.post("/api/bans", json={"kind": "ip", "value": "203.0.113.9"}).status_code == 401
    with SQLiteStore(setup.state_url.removeprefix("sqlite:///")) as store:
        assert store.list_bans() == []


def test_login_wrong_password_and_unknown_user_look_the_same(setup: Setup) -> None:
    with httpx.Client(base_url=setup.dash, timeout=10) as client:
        token = csrf_of(client.get("/login").text)
        wrong = client.post("/login", data={"csrf": token, "name": "ada", "password": "nope nope nope"})
        unknown = client.post("/login", data={"csrf": token, "name": "zed", "password": "nope nope nope"})
        assert wrong.status_code == unknown.status_code == 401
        assert "Wrong user name or password." in wrong.text and "Wrong user name or password." in unknown.text
        assert client.get("/").status_code == 303


def test_security_headers_and_cookie_flags(setup: Setup) -> None:
    with httpx.Client(base_url=setup.dash, timeout=10) as client:
        page = client.get("/login")
        csp = page.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "'unsafe-inline'" not in csp and "default-src 'none'" in csp
        assert "frame-ancestors 'none'" in csp
        assert page.headers["x-frame-options"] == "DENY"
        assert page.headers["x-content-type-options"] == "nosniff"
        assert page.headers["cache-control"] == "no-store"
        cookie = page.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=lax" in cookie and "secure" not in cookie  # plain http
        # No inline script anywhere; htmx comes from /static and is configured by a meta tag.
        assert "<script>" not in page.text and 'src="/static/htmx.min.js"' in page.text
        assert '"selfRequestsOnly":true' in page.text and "hx-on" not in page.text
        js = client.get("/static/htmx.min.js")
        assert js.status_code == 200 and "htmx" in js.text
        assert "content-security-policy" in js.headers


def test_secure_cookies_when_configured(tmp_path: object, setup: Setup) -> None:
    app = create_app(setup.state_url, secure_cookies=True)
    served = serve(app)
    try:
        page = httpx.get(served.url + "/login", timeout=10)
        assert "secure" in page.headers["set-cookie"].lower()
        assert page.headers["strict-transport-security"].startswith("max-age=")
    finally:
        served.stop()
        app.state.dashboard.close()


def test_csrf_missing_or_wrong_is_refused(setup: Setup) -> None:
    with login(setup.dash, "ana") as client:
        no_token = client.post("/bans/add", data={"kind": "ip", "value": "203.0.113.5", "ttl": "3600"})
        assert no_token.status_code == 403 and "security token" in no_token.text
        wrong = client.post(
            "/bans/add", data={"csrf": "0" * 64, "kind": "ip", "value": "203.0.113.5", "ttl": "3600"}
        )
        assert wrong.status_code == 403
        # The API with a session cookie needs the header too.
        assert client.post("/api/bans", json={"kind": "ip", "value": "203.0.113.5"}).status_code == 403
        # The login form itself carries one.
        with httpx.Client(base_url=setup.dash, timeout=10) as stranger:
            stranger.get("/login")
            refused = stranger.post("/login", data={"name": "ana", "password": PASSWORD})
            assert refused.status_code == 403
        listed = client.get("/api/bans").json()["bans"]
        assert listed == []


def test_oversized_bodies_are_refused_unread(setup: Setup) -> None:
    big = "x" * (70 * 1024)
    with httpx.Client(base_url=setup.dash, timeout=10) as client:
        token = csrf_of(client.get("/login").text)
        answer = client.post("/login", data={"csrf": token, "name": "ada", "password": big})
        assert answer.status_code == 413
    with login(setup.dash, "ana") as client:
        token = csrf_of(client.get("/").text)
        answer = client.post("/api/bans", headers={"x-csrf-token": token}, content=big)
        assert answer.status_code == 413 and answer.json()["error"] == "bad_request"


def test_viewer_sees_no_ban_controls_and_is_refused(setup: Setup) -> None:
    setup.traffic("198.51.100.4", "/.env")  # a trap: an event to look at
    with login(setup.dash, "vic") as client:
        page = client.get("/actors", params={"kind": "ip", "q": "198.51.100.4"})
        assert page.status_code == 200
        assert "/.env" in page.text
        assert 'id="ban-form"' not in page.text and "/bans/add" not in page.text
        bans = client.get("/bans").text
        assert 'id="add-ban"' not in bans and ">Lift<" not in bans
        token = csrf_of(page.text)
        refused = client.post(
            "/actors/ban", data={"csrf": token, "kind": "ip", "value": "198.51.100.4", "ttl": "3600"}
        )
        assert refused.status_code == 403
        assert client.get("/users").status_code == 403
        assert client.post("/api/bans", json={"kind": "ip", "value": "198.51.100.4"}).status_code == 403
    with SQLiteStore(setup.state_url.removeprefix("sqlite:///")) as store:
        assert store.list_bans() == []


def test_analyst_bans_from_the_actor_page_and_the_site_enforces_it(setup: Setup) -> None:
    address = "203.0.113.77"
    assert setup.traffic(address, "/people/1", ua=BOT_UA) == [403]  # challenged: recorded
    assert setup.traffic(address, "/people/2") == [200]  # a browser from there still passes
    with login(setup.dash, "ana") as client:
        page = client.get("/actors", params={"kind": "ip", "q": address})
        assert "1 recorded decisions" in page.text and "python-requests" in page.text
        answer = client.post(
            "/actors/ban",
            data={
                "csrf": csrf_of(page.text),
                "kind": "ip",
                "q": address,
                "value": address,
                "ttl": "3600",
                "note": "walked the trap <b>",
            },
        )
        assert answer.status_code == 303
        after = client.get(answer.headers["location"])
        assert "Banned" in after.text and "walked the trap &lt;b&gt; [by ana]" in after.text
    assert _wait_for_status(setup, address, "/people/1", 403) == 403
    # And lifted again from the bans page.
    with login(setup.dash, "ana") as client:
        page = client.get("/bans")
        lifted = client.post("/bans/lift", data={"csrf": csrf_of(page.text), "kind": "ip", "value": address})
        assert lifted.status_code == 303 and lifted.headers["location"].endswith("done=lifted")
    assert _wait_for_status(setup, address, "/people/1", 200) == 200


def test_ban_by_pseudonym_needs_the_matching_real_value(setup: Setup) -> None:
    setup.traffic("203.0.113.88", "/.env")
    with login(setup.dash, "ana") as client:
        overview = client.get("/").text
        assert "203.0.113.88" not in overview  # events hold pseudonyms only
        pseudonym = setup.site_warden.pseudonymizer.ip("203.0.113.88")
        assert pseudonym in overview
        page = client.get("/actors", params={"kind": "ip", "q": pseudonym})
        assert 'name="expect"' in page.text
        token = csrf_of(page.text)
        form = {"csrf": token, "kind": "ip", "q": pseudonym, "expect": pseudonym, "ttl": "3600"}
        wrong = client.post("/actors/ban", data={**form, "value": "203.0.113.89"})
        assert wrong.status_code == 400 and "not the actor" in wrong.text
        right = client.post("/actors/ban", data={**form, "value": "203.0.113.88"})
        assert right.status_code == 303
        assert [b["value"] for b in client.get("/api/bans").json()["bans"]] == ["203.0.113.88"]


def test_hostile_user_agent_is_shown_as_text(setup: Setup) -> None:
    setup.traffic("203.0.113.66", "/.env", ua=XSS_UA)
    with login(setup.dash, "vic") as client:
        page = client.get("/actors", params={"kind": "ip", "q": "203.0.113.66"}).text
        assert "&lt;img src=x onerror=alert(1)&gt;" in page
        assert "<img src=x" not in page


def test_network_search_finds_pseudonymised_addresses(setup: Setup) -> None:
    setup.traffic("192.0.2.10", "/.env")
    setup.traffic("192.0.2.200", "/.env")
    setup.traffic("198.51.100.1", "/.env")
    with login(setup.dash, "vic") as client:
        found = client.get("/api/actors", params={"kind": "network", "q": "192.0.2.0/24"}).json()
        assert found["total"] == 2 and found["pseudonymised"] is True
        too_big = client.get("/api/actors", params={"kind": "network", "q": "10.0.0.0/8"})
        assert too_big.status_code == 400 and "address by address" in too_big.json()["detail"]


def test_overview_counts_decisions_and_solve_rate(setup: Setup) -> None:
    for i in range(3):
        setup.traffic(f"203.0.113.{i + 1}", "/.env")
    with login(setup.dash, "vic") as client:
        summary = client.get("/api/summary", params={"hours": 1}).json()
        assert summary["actions"] == {"block": 3}
        assert summary["solve_rate"] is None
        assert len(summary["top_actors"]["ip"]) == 3
        page = client.get("/").text
        assert '<span class="n" id="decisions">3</span>' in page and "<svg" in page


def test_login_attempts_are_held_to_the_engine_budget(tmp_path: object, setup: Setup) -> None:
    app = create_app(
        setup.state_url, login_budget=LoginBudget(per_address_per_minute=50, per_name_per_minute=3)
    )
    served = serve(app)
    try:
        with httpx.Client(base_url=served.url, timeout=10) as client:
            token = csrf_of(client.get("/login").text)
            codes = [
                client.post(
                    "/login", data={"csrf": token, "name": "ada", "password": "wrong guess!!"}
                ).status_code
                for _ in range(3)
            ]
            # The budget is spent: even the right password is not checked now, for this name...
            right = client.post("/login", data={"csrf": token, "name": "ada", "password": PASSWORD})
            # ...while another name from the same address still may log in.
            other = client.post("/login", data={"csrf": token, "name": "vic", "password": PASSWORD})
        assert codes[:2] == [401, 401]
        assert right.status_code == 429 and "Too many attempts" in right.text
        assert int(right.headers["retry-after"]) > 0
        assert other.status_code == 303
    finally:
        served.stop()
        app.state.dashboard.close()


def test_password_change_and_removal_end_sessions(setup: Setup) -> None:
    from scrapewarden.dashboard.accounts import set_password

    with login(setup.dash, "vic") as client:
        assert client.get("/").status_code == 200
        with SQLiteStore(setup.state_url.removeprefix("sqlite:///")) as store:
            set_password(store, "vic", "another long password", now=time.time())
        assert client.get("/").status_code == 303
    with login(setup.dash, "ana") as client:
        with SQLiteStore(setup.state_url.removeprefix("sqlite:///")) as store:
            store.remove_user("ana")
        assert client.get("/").status_code == 303


def test_logout_ends_the_session(setup: Setup) -> None:
    with login(setup.dash, "vic") as client:
        page = client.get("/")
        out = client.post("/logout", data={"csrf": csrf_of(page.text)})
        assert out.status_code == 303 and out.headers["location"] == "/login"
        assert client.get("/").status_code == 303


def test_admin_manages_users_and_others_cannot(setup: Setup) -> None:
    with login(setup.dash, "ada") as client:
        page = client.get("/users")
        assert page.status_code == 200 and "vic" in page.text
        token = csrf_of(page.text)
        added = client.post(
            "/users/change",
            data={"csrf": token, "action": "add", "name": "bea", "role": "viewer", "password": "x" * 14},
        )
        assert added.status_code == 303
        short = client.post(
            "/users/change",
            data={"csrf": token, "action": "add", "name": "cy", "role": "viewer", "password": "short"},
        )
        assert short.status_code == 400 and "at least 12" in short.text
        myself = client.post("/users/change", data={"csrf": token, "action": "remove", "name": "ada"})
        assert myself.status_code == 400
        assert [u["name"] for u in client.get("/api/users").json()["users"]] == ["ada", "ana", "bea", "vic"]
    with login(setup.dash, "ana") as client:
        assert client.get("/users").status_code == 403
        assert client.get("/api/users").status_code == 403


def test_bearer_tokens_for_the_api(setup: Setup) -> None:
    from scrapewarden.dashboard.accounts import make_token

    with SQLiteStore(setup.state_url.removeprefix("sqlite:///")) as store:
        analyst = make_token(store, "ana", now=time.time(), ttl=3600).token
        viewer = make_token(store, "vic", now=time.time(), ttl=3600).token
        expired = make_token(store, "vic", now=time.time() - 7200, ttl=3600).token
    with httpx.Client(base_url=setup.dash, timeout=10) as client:
        auth = {"authorization": f"Bearer {analyst}"}
        assert client.get("/api/me", headers=auth).json() == {"name": "ana", "role": "analyst"}
        made = client.post(
            "/api/bans", headers=auth, json={"kind": "network", "value": "203.0.113.0/24", "ttl_seconds": 600}
        )
        assert made.status_code == 201 and made.json()["value"] == "203.0.113.0/24"
        bad = client.post("/api/bans", headers=auth, json={"kind": "ip", "value": "not an address"})
        assert bad.status_code == 400
        view = {"authorization": f"Bearer {viewer}"}
        assert (
            client.post("/api/bans", headers=view, json={"kind": "ip", "value": "192.0.2.1"}).status_code
            == 403
        )
        assert client.get("/api/me", headers={"authorization": f"Bearer {expired}"}).status_code == 401
        assert client.get("/api/me", headers={"authorization": "Bearer swd_forged"}).status_code == 401
        gone = client.delete("/api/bans", headers=auth, params={"kind": "network", "value": "203.0.113.0/24"})
        assert gone.status_code == 204
        again = client.delete(
            "/api/bans", headers=auth, params={"kind": "network", "value": "203.0.113.0/24"}
        )
        assert again.status_code == 404
        assert client.get("/api/openapi.json").json() == OPENAPI


@pytest.mark.parametrize("fmt", ["json", "plain", "nginx", "nftables", "ipset", "nginx-geo"])
def test_bans_export(setup: Setup, fmt: str) -> None:
    with login(setup.dash, "ana") as client:
        token = csrf_of(client.get("/bans").text)
        for value in ("192.0.2.1", "192.0.2.2"):
            client.post("/bans/add", data={"csrf": token, "kind": "ip", "value": value, "ttl": "3600"})
        client.post("/bans/add", data={"csrf": token, "kind": "account", "value": "acct-9", "ttl": "0"})
        out = client.get("/bans/export", params={"format": fmt})
        assert out.status_code == 200
        assert "attachment" in out.headers["content-disposition"]
        if fmt == "json":
            assert sorted(b["value"] for b in out.json()) == ["192.0.2.1", "192.0.2.2", "acct-9"]
        else:
            # Firewall formats hold addresses only, aggregated: .1 and .2 make a /31.
            assert "192.0.2.1" in out.text and "192.0.2.2" in out.text
            assert "acct-9" not in out.text
        assert client.get("/bans/export", params={"format": "exe"}).status_code == 400


HOSTILE = ["\x00", "\u202e", "'\"><script>", "%", "1" * 600, "::", "10.0.0.0/0", "ip~"]


def test_hostile_queries_and_forms_get_answers_not_errors(setup: Setup) -> None:
    with login(setup.dash, "ada") as client:
        token = csrf_of(client.get("/").text)
        # Bytes that are not UTF-8, as a hand-made URL and form body.
        assert client.get("/actors?kind=ip&q=%ff%fe%00").status_code == 400
        assert client.get("/bans?q=%ff%fe").status_code == 200
        raw = f"csrf={token}&kind=ip&value=%ff%fe&ttl=1h".encode()
        form = {"content-type": "application/x-www-form-urlencoded"}
        assert client.post("/bans/add", content=raw, headers=form).status_code == 400
        for text in HOSTILE:
            for kind in ("ip", "network", "account", "session", "fingerprint", "planet"):
                page = client.get("/actors", params={"kind": kind, "q": text})
                assert page.status_code in (200, 400), (kind, text)
                assert "<script>" not in page.text.split("</header>", 1)[1]
            assert client.get("/bans", params={"q": text, "kind": text, "show": text}).status_code == 200
            assert client.get("/", params={"hours": text}).status_code == 200
            for path, form in (
                ("/bans/add", {"kind": "ip", "value": text, "ttl": text, "note": text}),
                ("/bans/lift", {"kind": text, "value": text}),
                ("/actors/ban", {"kind": "account", "value": text, "ttl": "1h", "expect": text}),
                ("/users/change", {"action": text, "name": text, "role": text, "password": text}),
            ):
                answer = client.post(path, data={"csrf": token, **form})
                assert answer.status_code in (303, 400), (path, text, answer.status_code)


# Routes a stranger may reach: the login form, its assets, and the API's own description.
OPEN_ROUTES = {"/login", "/static", "/api/openapi.json"}


def test_every_route_of_the_app_refuses_strangers(setup: Setup) -> None:
    """Walks the app's own route table, so a route added later is covered without being listed:
    pages send strangers to login, the API answers 401, and no POST or DELETE changes anything."""
    from starlette.routing import Mount, Route

    with SQLiteStore(setup.state_url.removeprefix("sqlite:///")) as store:
        head_before = store.audit_head()
    checked = 0
    with httpx.Client(base_url=setup.dash, timeout=10) as client:
        for route in setup.app.routes:
            if isinstance(route, Mount) or route.path in OPEN_ROUTES:
                continue
            assert isinstance(route, Route), route
            path = re.sub(r"\{incident_id(:\w+)?\}", "INC-0", route.path)
            assert "{" not in path, f"a path parameter this test does not know: {route.path}"
            api = path.startswith("/api/")
            for method in sorted(route.methods or {"GET"}):
                if method == "HEAD":
                    continue
                answer = client.request(method, path, data=None if api else {"kind": "ip"})
                checked += 1
                if api:
                    assert answer.status_code == 401, (method, path)
                elif method == "GET":
                    assert answer.status_code == 303, (method, path)
                    assert answer.headers["location"].startswith("/login?next="), (method, path)
                else:
                    assert answer.status_code in (303, 403), (method, path, answer.status_code)
                    where = answer.headers.get("location", "/login")
                    assert not where.startswith(("/bans?", "/actors?")), path
    assert checked > 30  # the walk saw the app's routes, not an empty table
    with SQLiteStore(setup.state_url.removeprefix("sqlite:///")) as store:
        assert store.list_bans() == [] and store.list_allows() == []
        assert store.audit_head() == head_before  # nothing was done, so nothing was audited
