"""The Policy page over loopback HTTP: drafts (admin only), validation with key and line,
replay of recorded traffic under both policies, publishing to the file (audited, with text)."""

from __future__ import annotations

import hashlib
import re

from .conftest import LOWER_BUDGET, POLICY, PolicySetup, csrf_of, login


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
