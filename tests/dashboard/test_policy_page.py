"""The Policy page over loopback HTTP: drafts (admin only), validation with key and line,
replay of recorded traffic under both policies, publishing to the file (audited, with text)."""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from scrapewarden.dashboard.accounts import add_user
from scrapewarden.dashboard.app import create_app
from scrapewarden.dashboard.login_guard import LoginBudget
from scrapewarden.doors.asgi import ScrapeWardenMiddleware
from scrapewarden.policy_file import load_policy
from scrapewarden.state.sqlite import SQLiteStore
from scrapewarden.warden import Warden

from .conftest import BOT_UA, PASSWORD, USERS, _people, csrf_of, login, serve

POLICY = """\
[network]
trusted_proxies = ["127.0.0.0/8", "::1/128"]

[[protected]]
pattern = "/people/{id}"

[client]
inconsistent_browser = 0
missing_accept_language = 0
"""
LOWER_BUDGET = POLICY + "\n[limits.per_ip]\nprofiles_per_hour = 3\n"


@dataclass
class PolicySetup:
    dash: str
    site: str
    policy_file: Path
    site_warden: Warden

    def scrape(self, address: str, count: int) -> None:
        headers = {"x-forwarded-for": address, "user-agent": BOT_UA, "accept": "text/html"}
        with httpx.Client(base_url=self.site, timeout=10) as client:
            for i in range(count):
                client.get(f"/people/{i}", headers=headers)
        self.site_warden.store.flush()


@pytest.fixture
def policy_setup(tmp_path: Path) -> Iterator[PolicySetup]:
    policy_file = tmp_path / "policy.toml"
    policy_file.write_text(POLICY, encoding="utf-8")
    state_url = f"sqlite:///{tmp_path}/state.db"
    with SQLiteStore(tmp_path / "state.db") as store:
        for name, role in USERS.items():
            add_user(store, name, role, PASSWORD, now=time.time())
    site_warden = Warden(load_policy(policy_file), state=state_url)
    site = serve(ScrapeWardenMiddleware(_people, warden=site_warden))
    app = create_app(state_url, policy=policy_file, login_budget=LoginBudget(100, 100, 300))
    dash = serve(app)
    try:
        yield PolicySetup(dash.url, site.url, policy_file, site_warden)
    finally:
        dash.stop()
        site.stop()
        app.state.dashboard.close()
        site_warden.close()


def _count(html: str, policy: str, action: str) -> int:
    found = re.search(rf'data-policy="{policy}" data-action="{action}">(\d+)<', html)
    assert found, f"no {policy}/{action} count on the page"
    return int(found.group(1))


def test_draft_validate_replay_publish(policy_setup: PolicySetup) -> None:
    policy_setup.scrape("198.51.100.7", 30)
    with login(policy_setup.dash, "ada") as ada:
        page = ada.get("/policy")
        assert page.status_code == 200 and "No draft." in page.text
        token = csrf_of(page.text)
        bad = ada.post(
            "/policy/draft",
            data={
                "csrf": token,
                "do": "save",
                "text": POLICY + '\n[limits.per_ip]\nprofiles_per_hour = "<b>3</b>"\n',
            },
        )
        assert bad.status_code == 303
        page = ada.get("/policy").text
        assert "The draft does not validate" in page and "limits.per_ip.profiles_per_hour" in page
        assert "(line 12)" in page and "<b>3</b>" not in page
        ada.post("/policy/draft", data={"csrf": token, "do": "save", "text": LOWER_BUDGET})
        page = ada.get("/policy").text
        assert "The draft is valid." in page and "+profiles_per_hour = 3" in page
        replayed = ada.get("/policy", params={"replay": "1", "hours": "1"}).text
        assert "non-allowed decisions only" in replayed
        assert _count(replayed, "draft", "block") > _count(replayed, "current", "block")
        digest = hashlib.sha256(LOWER_BUDGET.encode()).hexdigest()
        published = ada.post("/policy/publish", data={"csrf": token, "sha256": digest})
        assert published.status_code == 303
        assert policy_setup.policy_file.read_text(encoding="utf-8") == LOWER_BUDGET
        page = ada.get("/policy").text
        assert "No draft." in page and digest[:16] in page and "by ada" in page
        entry = ada.get("/api/audit", params={"action": "policy.publish"}).json()["entries"][0]
    assert entry["actor"] == "ada" and entry["details"]["sha256"] == digest
    assert entry["details"]["text"] == LOWER_BUDGET
    assert entry["details"]["previous_sha256"] == hashlib.sha256(POLICY.encode()).hexdigest()


def test_only_admins_edit_or_publish(policy_setup: PolicySetup) -> None:
    for name in ("ana", "vic"):
        with login(policy_setup.dash, name) as client:
            page = client.get("/policy")
            assert page.status_code == 200 and "textarea" not in page.text
            token = csrf_of(page.text)
            assert client.post("/policy/draft", data={"csrf": token, "text": LOWER_BUDGET}).status_code == 403
            assert client.post("/policy/publish", data={"csrf": token, "sha256": "0"}).status_code == 403
    assert policy_setup.policy_file.read_text(encoding="utf-8") == POLICY
    with login(policy_setup.dash, "ada") as ada:
        # A draft changed after the page was read is not published blind.
        ada.post("/policy/draft", data={"csrf": csrf_of(ada.get("/policy").text), "text": LOWER_BUDGET})
        token = csrf_of(ada.get("/policy").text)
        assert ada.post("/policy/publish", data={"csrf": token, "sha256": "0" * 64}).status_code == 409
    assert policy_setup.policy_file.read_text(encoding="utf-8") == POLICY
