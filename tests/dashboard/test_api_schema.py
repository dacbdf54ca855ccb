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

from scrapewarden.core.policy import Policy
from scrapewarden.dashboard.accounts import add_user, make_token
from scrapewarden.dashboard.api import OPENAPI
from scrapewarden.dashboard.app import create_app
from scrapewarden.state.base import Ban

from .conftest import BOT_UA, PASSWORD, serve

schema = schemathesis.openapi.from_dict(OPENAPI)
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    folder: Path = tmp_path_factory.mktemp("api")
    app = create_app(f"sqlite:///{folder}/state.db", policy=Policy(protected=[{"pattern": "/people/{id}"}]))
    dash = app.state.dashboard
    now = time.time()
    add_user(dash.store, "ada", "admin", PASSWORD, now=now)
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
        "/api/allows",
    }
