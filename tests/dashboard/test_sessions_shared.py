"""Sessions revoked in the store: a cookie copied before logout is refused after it, by every
dashboard process on that store (two apps over real HTTP, on SQLite and on a real Redis)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from scrapewarden.bench.redis_servers import RedisMissing, RedisServer
from scrapewarden.cli.main import main as cli
from scrapewarden.dashboard.accounts import add_user
from scrapewarden.dashboard.app import create_app
from scrapewarden.dashboard.login_guard import LoginBudget
from scrapewarden.dashboard.sessions import COOKIE
from scrapewarden.state.url import open_state

from .conftest import PASSWORD, USERS, Served, csrf_of, login, serve, site_policy


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    try:
        server = RedisServer(tmp_path / "redis").start()
    except RedisMissing as missing:
        pytest.skip(str(missing))
    try:
        # 1 s to answer, not the 20 ms default: this test is about sharing, not outages, and a
        # revocation that timed out on a loaded machine would stay in one process's mirror.
        yield server.url + "?timeout=1"
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", "redis"])
def state_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/state.db"
    url: str = request.getfixturevalue("redis_url")
    return url


@contextmanager
def two_dashboards(state_url: str) -> Iterator[tuple[Served, Served]]:
    """Two dashboard apps (as two processes behind a load balancer) on one store."""
    store = open_state(state_url)
    try:
        for name, role in USERS.items():
            add_user(store, name, role, PASSWORD, now=time.time())
        store.flush()
    finally:
        store.close()
    apps = [
        create_app(state_url, policy=site_policy(), login_budget=LoginBudget(100, 100, 300)) for _ in "ab"
    ]
    served = [serve(app) for app in apps]
    try:
        yield served[0], served[1]
    finally:
        for one, app in zip(served, apps, strict=True):
            one.stop()
            app.state.dashboard.close()


def _with_cookie(base: str, cookie: str, path: str = "/") -> httpx.Response:
    with httpx.Client(base_url=base, timeout=10, cookies={COOKIE: cookie}) as client:
        return client.get(path)


def test_a_cookie_copied_before_logout_is_refused_after_it_by_both_apps(state_url: str) -> None:
    with two_dashboards(state_url) as (a, b):
        with login(a.url, "vic") as client:
            copied = client.cookies[COOKIE]
            # The same cookie works on the other process (the signing key is shared)...
            assert _with_cookie(b.url, copied).status_code == 200
            out = client.post("/logout", data={"csrf": csrf_of(client.get("/").text)})
            assert out.status_code == 303
        # ...and after logout neither process takes it, though it is validly signed and young.
        for app in (a, b):
            refused = _with_cookie(app.url, copied)
            assert refused.status_code == 303 and refused.headers["location"].startswith("/login")
            assert _with_cookie(app.url, copied, "/api/me").status_code == 401
        # Another session of the same user is untouched by that logout.
        with login(b.url, "vic") as again:
            assert again.get("/").status_code == 200


def test_an_admin_ends_every_session_of_a_user_audited(state_url: str) -> None:
    with two_dashboards(state_url) as (a, b):
        with login(a.url, "vic") as vic_a, login(b.url, "vic") as vic_b, login(a.url, "ana") as ana:
            assert vic_a.get("/").status_code == 200 and vic_b.get("/").status_code == 200
            with login(b.url, "ada") as ada:
                page = ada.get("/users")
                assert 'name="action" value="logout"' in page.text
                token = csrf_of(page.text)
                ended = ada.post("/users/change", data={"csrf": token, "action": "logout", "name": "vic"})
                assert ended.status_code == 303 and ended.headers["location"] == "/users?done=logout"
                unknown = ada.post(
                    "/users/change", data={"csrf": token, "action": "logout", "name": "nobody"}
                )
                assert unknown.status_code == 400
                audit = ada.get("/api/audit").json()
            assert vic_a.get("/").status_code == 303 and vic_b.get("/").status_code == 303
            assert ana.get("/").status_code == 200  # only vic's sessions ended
            # The analyst may not end anyone's sessions.
            refused = ana.post(
                "/users/change", data={"csrf": csrf_of(ana.get("/").text), "action": "logout", "name": "ada"}
            )
            assert refused.status_code == 403
        logged = [e for e in audit["entries"] if e["action"] == "user.logout"]
        assert [(e["actor"], e["target"]) for e in logged] == [("ada", "vic")]
        # Logging in again afterwards works.
        with login(a.url, "vic") as fresh:
            assert fresh.get("/").status_code == 200


def test_users_logout_command_ends_sessions_on_a_running_dashboard(tmp_path: Path) -> None:
    state_url = f"sqlite:///{tmp_path}/state.db"
    with two_dashboards(state_url) as (a, _b):
        with login(a.url, "ana") as ana:
            assert ana.get("/").status_code == 200
            run = CliRunner().invoke(cli, ["users", "logout", "ana", "--state", state_url, "--as", "ops"])
            assert run.exit_code == 0, run.output
            assert "every session of ana is over" in run.output
            assert ana.get("/").status_code == 303
        missing = CliRunner().invoke(cli, ["users", "logout", "nobody", "--state", state_url])
        assert missing.exit_code != 0 and "no user" in missing.output
    store = open_state(state_url)
    try:
        logged = [e for e in store.audit_entries() if e.action == "user.logout"]
    finally:
        store.close()
    assert [(e.actor, e.target) for e in logged] == [("ops", "ana")]
