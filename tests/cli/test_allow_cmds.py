"""`scrapewarden allow add|lift|list`, in-process against a real SQLite file, and a serving Warden
on the same file picking the allow up."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from scrapewarden.cli.main import main
from scrapewarden.core.decision import Action
from scrapewarden.core.policy import Policy
from scrapewarden.state.sqlite import SQLiteStore
from scrapewarden.warden import Warden


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "state.db"


def run(db: Path, *args: str) -> Result:
    runner = CliRunner(env={"COLUMNS": "200", "SCRAPEWARDEN_STATE": f"sqlite:///{db}"})
    return runner.invoke(main, list(args), catch_exceptions=False)


def allows_json(db: Path, *extra: str) -> list[dict[str, Any]]:
    result = run(db, "allow", "list", "--json", *extra)
    assert result.exit_code == 0, result.output
    parsed: list[dict[str, Any]] = json.loads(result.stdout)
    return parsed


def test_add_list_lift_with_audit_entries(db: Path) -> None:
    result = run(
        db, "allow", "add", "203.0.113.9", "--ttl", "2h", "--reason", "research contract", "--as", "ana"
    )
    assert result.exit_code == 0, result.output
    assert result.output.startswith("allowed ip:203.0.113.9 until ")
    result = run(db, "allow", "add", "partner-7", "--kind", "account", "--ttl", "0", "--as", "ana")
    assert "allowed account:partner-7 until lifted" in result.output
    listed = allows_json(db)
    assert [(a["kind"], a["value"], a["by"], a["active"]) for a in listed] == [
        ("ip", "203.0.113.9", "ana", True),
        ("account", "partner-7", "ana", True),
    ]
    assert 7100 < listed[0]["expires_in"] <= 7200 and listed[1]["expires"] is None
    table = run(db, "allow", "list").output
    assert "203.0.113.9" in table and "research contract" in table and "partner-7" in table

    result = run(db, "allow", "lift", "203.0.113.9", "--as", "bo")
    assert result.exit_code == 0 and "lifted allow ip:203.0.113.9" in result.output
    assert [a["value"] for a in allows_json(db)] == ["partner-7"]
    missing = run(db, "allow", "lift", "203.0.113.9")
    assert missing.exit_code == 1 and "no allow for ip:203.0.113.9" in missing.output

    with SQLiteStore(db) as store:
        entries = [(e.actor, e.action, e.target) for e in store.audit_entries()]
        assert store.list_bans() == []  # an allow is not a ban
    assert entries == [
        ("ana", "allow.add", "ip:203.0.113.9"),
        ("ana", "allow.add", "account:partner-7"),
        ("bo", "allow.remove", "ip:203.0.113.9"),
    ]


def test_bad_input_is_refused_and_nothing_is_stored(db: Path) -> None:
    assert run(db, "allow", "add", "not-an-address").exit_code == 2
    assert run(db, "allow", "add", "203.0.113.9", "--ttl", "soon").exit_code == 2
    assert run(db, "allow", "add", "x", "--kind", "cookie").exit_code == 2
    assert allows_json(db, "--all") == []


def test_hostile_reason_is_shown_as_text(db: Path) -> None:
    run(db, "allow", "add", "203.0.113.9", "--reason", "\x1b[2J\u202eevil")
    table = run(db, "allow", "list").output
    assert "\x1b" not in table and "\u202e" not in table and "\\x1b[2J\\u202eevil" in table


def test_expired_allows_show_only_with_all(db: Path) -> None:
    from scrapewarden.state.base import Allow

    with SQLiteStore(db) as store:  # one that ended a minute ago
        store.add_allow(Allow("ip", "203.0.113.9", time.time() - 3600, time.time() - 60, "", "ana"))
    assert allows_json(db) == []
    assert [a["active"] for a in allows_json(db, "--all")] == [False]
    assert "no allows in force" in run(db, "allow", "list").output


def test_a_serving_warden_picks_up_an_allow_from_the_command(db: Path) -> None:
    now = [time.time()]
    warden = Warden(Policy(), state=f"sqlite:///{db}", clock=lambda: now[0])
    bot = [(b"user-agent", b"python-requests/2.32.3")]

    def ask() -> Action:
        now[0] += 3  # past the reload interval each time
        return warden.decide_http(peer="203.0.113.9", method="GET", path="/", query="", headers=bot).action

    try:
        assert ask() is not Action.ALLOW
        assert run(db, "allow", "add", "203.0.113.9", "--ttl", "1h").exit_code == 0
        assert ask() is Action.ALLOW
        assert run(db, "allow", "lift", "203.0.113.9").exit_code == 0
        assert ask() is not Action.ALLOW
    finally:
        warden.close()
