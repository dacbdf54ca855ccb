"""`scrapewarden incidents ...` on a SQLite store: list, show, assign, advance, each step audited;
hostile text shown escaped; the same as a real command."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from scrapewarden.cli.main import main
from scrapewarden.core.incidents import Actors, Detection
from scrapewarden.incidents.book import IncidentBook
from scrapewarden.state.audit import entries, verify_store
from scrapewarden.state.sqlite import SQLiteStore

SCRAPEWARDEN = Path(sys.executable).with_name("scrapewarden")
NOW = 1_800_000_000.0
HOSTILE_UA = "\x1b[2J\x1b[31mEvil [bold]markup[/bold] \u202egnp.exe"


def run(db: Path, *args: str, user: str = "alice") -> Result:
    env = {"COLUMNS": "200", "SCRAPEWARDEN_STATE": f"sqlite:///{db}", "SCRAPEWARDEN_USER": user}
    return CliRunner(env=env).invoke(main, list(args), catch_exceptions=False)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "state.db"
    store = SQLiteStore(path)
    ids = iter(["INC-20270115-aaaaaa", "INC-20270115-bbbbbb"])
    book = IncidentBook(store, clock=lambda: NOW, new_id=lambda now: next(ids), team="trust")
    book.record(
        Detection(
            ts=NOW,
            source="live",
            verdict="block",
            actors=Actors(ips=["ip~1"], networks=["net~a"], user_agents=[HOSTILE_UA]),
            detectors={"breadth": ["120 profiles in an hour"]},
            records=[f"profile:{i}" for i in range(30)],
            samples=[
                {"ts": NOW, "method": "GET", "path": "/users/1", "user_agent": HOSTILE_UA, "action": "block"}
            ],
        )
    )
    book.record(
        Detection(
            ts=NOW + 60,
            source="analyze",
            verdict="scraper",
            actors=Actors(ips=["ip~2"], networks=["net~b"]),
            records=["profile:99"],
        )
    )
    store.close()
    return path


def test_list_shows_every_incident(db: Path) -> None:
    result = run(db, "incidents", "list")
    assert result.exit_code == 0, result.output
    assert "INC-20270115-aaaaaa" in result.stdout and "INC-20270115-bbbbbb" in result.stdout
    listed = json.loads(run(db, "incidents", "list", "--json").stdout)
    assert [(i["id"], i["stage"], i["team"], i["records"]) for i in listed] == [
        ("INC-20270115-aaaaaa", "open", "trust", 30),
        ("INC-20270115-bbbbbb", "open", "trust", 1),
    ]


def test_show_escapes_what_the_scraper_sent(db: Path) -> None:
    result = run(db, "incidents", "show", "INC-20270115-aaaaaa")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "\x1b" not in out and "\u202e" not in out
    assert "\\x1b[2J" in out and "\\u202e" in out and "[bold]markup[/bold]" in out
    assert "records exposed: 30 (first 20; --records for all)" in out
    assert "profile:19" in out and "profile:20" not in out
    assert "profile:29" in run(db, "incidents", "show", "INC-20270115-aaaaaa", "--records").stdout
    full = json.loads(run(db, "incidents", "show", "INC-20270115-aaaaaa", "--json").stdout)
    assert full["actors"]["user_agents"] == [HOSTILE_UA] and len(full["records"]) == 30


def test_assign_and_advance_are_recorded_with_who_and_audited(db: Path) -> None:
    assert (
        run(
            db, "incidents", "assign", "INC-20270115-aaaaaa", "--owner", "alice", "--team", "privacy"
        ).exit_code
        == 0
    )
    first = run(
        db, "incidents", "advance", "INC-20270115-aaaaaa", "--note", "banned 203.0.113.0/24", user="bob"
    )
    assert first.exit_code == 0 and "contained" in first.stdout
    closed = run(
        db, "incidents", "advance", "INC-20270115-bbbbbb", "--to", "closed", "--note", "our own crawler"
    )
    assert closed.exit_code == 0
    back = run(db, "incidents", "advance", "INC-20270115-bbbbbb", "--to", "assessed")
    assert back.exit_code == 1 and "closed" in back.output

    shown = json.loads(run(db, "incidents", "show", "INC-20270115-aaaaaa", "--json").stdout)
    assert (shown["owner"], shown["team"], shown["stage"]) == ("alice", "privacy", "contained")
    assert [(s["stage"], s["by"], s["note"]) for s in shown["steps"]] == [
        ("open", "system", "opened from a live detection (block)"),
        ("contained", "bob", "banned 203.0.113.0/24"),
    ]
    assert [i["id"] for i in json.loads(run(db, "incidents", "list", "--open", "--json").stdout)] == [
        "INC-20270115-aaaaaa"
    ]
    store = SQLiteStore(db)
    logged = [(e.actor, e.action, e.target) for e in entries(store)]
    assert verify_store(store).ok
    store.close()
    assert logged == [
        ("system", "incident.open", "INC-20270115-aaaaaa"),
        ("system", "incident.open", "INC-20270115-bbbbbb"),
        ("alice", "incident.assign", "INC-20270115-aaaaaa"),
        ("bob", "incident.advance", "INC-20270115-aaaaaa"),
        ("alice", "incident.advance", "INC-20270115-bbbbbb"),
    ]


def test_bad_input_is_a_clear_error(db: Path) -> None:
    missing = run(db, "incidents", "show", "INC-nope")
    assert missing.exit_code == 1 and "no incident" in missing.output
    assert run(db, "incidents", "assign", "INC-20270115-aaaaaa").exit_code == 2
    assert run(db, "incidents", "assign", "INC-20270115-aaaaaa", "--owner", "a\x1bb").exit_code == 2
    assert run(db, "incidents", "advance", "INC-20270115-aaaaaa", "--to", "sideways").exit_code == 2


@pytest.mark.skipif(not SCRAPEWARDEN.exists(), reason="the scrapewarden script is not installed")
def test_as_a_real_command(db: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "SCRAPEWARDEN_STATE": f"sqlite:///{db}", "SCRAPEWARDEN_USER": "erin"}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(SCRAPEWARDEN), *args], env=env, capture_output=True, text=True, timeout=60)

    assert cli("incidents", "advance", "INC-20270115-aaaaaa", "--note", "contained").returncode == 0
    listed = cli("incidents", "list", "--json")
    assert json.loads(listed.stdout)[0]["stage"] == "contained"
    verified = cli("audit", "verify")
    assert verified.returncode == 0 and "3 entries verified" in verified.stdout


def test_open_by_hand_and_a_later_detection_joins_it(db: Path) -> None:
    result = run(
        db,
        "incidents",
        "open",
        "--title",
        "Reported by a user: profiles mirrored on a lookup site",
        "--network",
        "198.51.100.0/24",
        "--record",
        "profile:7",
        "--note",
        "ticket 4711",
        user="hana",
    )
    assert result.exit_code == 0, result.output
    new_id = result.stdout.split()[1].rstrip(":")
    shown = json.loads(run(db, "incidents", "show", new_id, "--json").stdout)
    assert shown["steps"][0]["by"] == "hana" and shown["steps"][0]["note"] == "ticket 4711"
    assert shown["records"] == ["profile:7"] and shown["team"] == ""
    # A live finding from an address in that network joins it: the pseudonyms line up.
    from scrapewarden.core.policy import Policy
    from scrapewarden.logs.incidents_out import pseudonymizer_for

    store = SQLiteStore(db)
    p = pseudonymizer_for(Policy(), store)
    found = Detection(
        ts=NOW,
        source="live",
        verdict="block",
        actors=Actors(ips=[p.ip("198.51.100.9")], networks=[p.network("198.51.100.9")]),
    )
    incident, opened = IncidentBook(store).record(found)
    store.close()
    assert not opened and incident.id == new_id
    assert run(db, "incidents", "open", "--title", "x", "--ip", "not-an-ip").exit_code == 2
