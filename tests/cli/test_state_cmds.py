"""`scrapewarden ban ...` and `scrapewarden events ...`, in-process and as a real command."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from scrapewarden.cli.main import main
from scrapewarden.state.base import Ban, Event
from scrapewarden.state.sqlite import SQLiteStore

SCRAPEWARDEN = Path(sys.executable).with_name("scrapewarden")
if not SCRAPEWARDEN.exists():  # running outside the project venv
    SCRAPEWARDEN = Path("/work/main/.venv/bin/scrapewarden")


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "state.db"


def run(db: Path, *args: str) -> Result:
    # A wide terminal, so rich tables do not fold the values the tests look for.
    runner = CliRunner(env={"COLUMNS": "200", "SCRAPEWARDEN_STATE": f"sqlite:///{db}"})
    return runner.invoke(main, list(args), catch_exceptions=False)


def bans_json(db: Path, *extra: str) -> list[dict[str, Any]]:
    result = run(db, "ban", "list", "--json", *extra)
    assert result.exit_code == 0, result.output
    parsed: list[dict[str, Any]] = json.loads(result.stdout)
    return parsed


def event(i: int, **kw: object) -> Event:
    fields: dict[str, object] = {
        "ts": 1_700_000_000.0 + i,
        "action": "block",
        "score": 91.0,
        "enforced": True,
        "ip": "ip~0123456789abcdef",
        "method": "GET",
        "path": f"/users/{i}",
        "reasons": ["too many profiles"],
    }
    fields.update(kw)
    return Event(**fields)  # type: ignore[arg-type]


# -- ban add / list / remove --------------------------------------------------------------------


def test_add_list_remove(db: Path) -> None:
    result = run(db, "ban", "add", "203.0.113.7", "--ttl", "1h", "--reason", "scraping /users")
    assert result.exit_code == 0, result.output
    assert "ip:203.0.113.7" in result.stdout
    (listed,) = bans_json(db)
    assert listed["kind"] == "ip" and listed["value"] == "203.0.113.7"
    assert listed["reason"] == "scraping /users" and listed["source"] == "operator"
    assert listed["expires"] - listed["created"] == 3600
    assert listed["active"] is True and listed["offences"] == 1

    assert run(db, "ban", "remove", "203.0.113.7").exit_code == 0
    assert bans_json(db) == []
    missing = run(db, "ban", "remove", "203.0.113.7")
    assert missing.exit_code == 1 and "no ban" in missing.stderr


def test_repeat_bans_count_offences(db: Path) -> None:
    run(db, "ban", "add", "203.0.113.7")
    run(db, "ban", "remove", "203.0.113.7")
    result = run(db, "ban", "add", "203.0.113.7")
    assert "offence #2" in result.stdout
    assert bans_json(db)[0]["offences"] == 2


@pytest.mark.parametrize(
    ("ttl", "seconds"),
    [
        ("3600", 3600),
        ("30m", 1800),
        ("1h30m", 5400),
        ("2d", 172800),
        ("1w", 604800),
        ("90s", 90),
        (" 1H ", 3600),
    ],
)
def test_ttl_forms(db: Path, ttl: str, seconds: int) -> None:
    assert run(db, "ban", "add", "203.0.113.7", "--ttl", ttl).exit_code == 0
    (listed,) = bans_json(db)
    assert listed["expires"] - listed["created"] == seconds


def test_ttl_zero_means_forever(db: Path) -> None:
    result = run(db, "ban", "add", "203.0.113.7", "--ttl", "0")
    assert "until removed" in result.stdout
    assert bans_json(db)[0]["expires"] is None


@pytest.mark.parametrize("ttl", ["soon", "-5", "1.5h", "h", "", "10y"])
def test_bad_ttl_exits_2(db: Path, ttl: str) -> None:
    result = run(db, "ban", "add", "203.0.113.7", "--ttl", ttl)
    assert result.exit_code == 2
    assert "--ttl" in result.stderr


@pytest.mark.parametrize(
    ("target", "kind", "value"),
    [
        ("203.0.113.7", "ip", "203.0.113.7"),
        ("2001:DB8::1", "ip", "2001:db8::1"),
        ("::ffff:203.0.113.7", "ip", "203.0.113.7"),
        ("203.0.113.9/24", "network", "203.0.113.0/24"),
        ("2001:db8::/32", "network", "2001:db8::/32"),
    ],
)
def test_kind_is_guessed_and_addresses_normalised(db: Path, target: str, kind: str, value: str) -> None:
    assert run(db, "ban", "add", target).exit_code == 0
    (listed,) = bans_json(db)
    assert (listed["kind"], listed["value"]) == (kind, value)


def test_other_kinds_need_kind(db: Path) -> None:
    guessed = run(db, "ban", "add", "alice")
    assert guessed.exit_code == 2 and "--kind" in guessed.stderr
    assert run(db, "ban", "add", "alice", "--kind", "account").exit_code == 0
    assert [(b["kind"], b["value"]) for b in bans_json(db)] == [("account", "alice")]
    assert run(db, "ban", "remove", "alice", "--kind", "account").exit_code == 0


@pytest.mark.parametrize(
    "args",
    [
        ["999.1.1.1"],
        ["203.0.113.7/33"],
        ["not-an-ip", "--kind", "ip"],
        ["203.0.113.7/abc", "--kind", "network"],
        ["", "--kind", "account"],
        ["evil\x1b[31m", "--kind", "session"],
        ["x" * 600, "--kind", "fingerprint"],
    ],
)
def test_bad_targets_exit_2_with_a_message(db: Path, args: list[str]) -> None:
    result = run(db, "ban", "add", *args)
    assert result.exit_code == 2
    assert "Invalid value for 'TARGET'" in result.stderr
    assert "\x1b" not in result.stderr


def test_list_hides_expired_bans_unless_all(db: Path) -> None:
    now = time.time()
    with SQLiteStore(db) as store:
        store.add_ban(Ban("ip", "198.51.100.1", now - 100, now - 10, "old"))
        store.add_ban(Ban("ip", "198.51.100.2", now, None, "forever"))
    assert [b["value"] for b in bans_json(db)] == ["198.51.100.2"]
    assert [b["value"] for b in bans_json(db, "--all")] == ["198.51.100.1", "198.51.100.2"]
    table = run(db, "ban", "list", "--all").stdout
    assert "expired" in table and "never" in table
    for header in ("kind", "value", "expires in", "reason", "offences", "source"):
        assert header in table


def test_list_table_shows_attacker_strings_literally(db: Path) -> None:
    # Bans made by the engine can carry text an attacker chose (a session id, a reason quoting
    # a user agent): it must show as text, never as rich markup or terminal control codes.
    with SQLiteStore(db) as store:
        store.add_ban(
            Ban("session", "[red]s1[/red]", time.time(), None, "[link=https://evil.example]ua[/link]")
        )
        store.add_ban(Ban("fingerprint", "fp\x1b[2J", time.time(), None, "bidi \u202eexe.pdf", source="auto"))
    out = run(db, "ban", "list").stdout
    assert "[red]s1[/red]" in out
    assert "[link=https://evil.example]ua[/link]" in out
    assert "\x1b" not in out and "\u202e" not in out
    assert "fp\\x1b[2J" in out and "\\u202e" in out
    listed = {b["value"]: b for b in bans_json(db)}
    assert listed["fp\x1b[2J"]["reason"] == "bidi \u202eexe.pdf"  # JSON keeps the exact value


def test_empty_list(db: Path) -> None:
    assert "no bans in force" in run(db, "ban", "list").stdout
    assert bans_json(db) == []


def test_bad_state_url_exits_2(db: Path) -> None:
    result = run(db, "ban", "list", "--state", "redis://localhost?colour=blue")
    assert result.exit_code == 2 and "unknown option 'colour'" in result.stderr


def test_memory_state_warns_that_nothing_persists(db: Path) -> None:
    result = run(db, "ban", "add", "203.0.113.7", "--state", "memory://")
    assert result.exit_code == 0 and "nothing persists" in result.stderr


def test_help_explains_the_cli_default() -> None:
    out = CliRunner().invoke(main, ["ban", "add", "--help"]).output
    assert "sqlite:///scrapewarden.db" in out and "memory://" in out and "SCRAPEWARDEN_STATE" in out


# -- events tail --------------------------------------------------------------------------------


def test_tail_shows_the_newest_events_oldest_first(db: Path) -> None:
    with SQLiteStore(db) as store:
        for i in range(30):
            store.record_event(event(i))
    result = run(db, "events", "tail", "--limit", "5", "--json")
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [e["path"] for e in lines] == [f"/users/{i}" for i in range(25, 30)]
    assert lines[0]["reasons"] == ["too many profiles"] and lines[0]["time"].endswith("Z")

    plain = run(db, "events", "tail", "--limit", "2").stdout.splitlines()
    assert len(plain) == 2
    assert "block" in plain[1] and "/users/29" in plain[1] and "too many profiles" in plain[1]


def test_tail_escapes_attacker_controlled_text(db: Path) -> None:
    with SQLiteStore(db) as store:
        store.record_event(event(0, path="/x\x1b]0;pwned\x07", reasons=["ua \u202egnp", "[b]bold[/b]"]))
    out = run(db, "events", "tail").stdout
    assert "\x1b" not in out and "\x07" not in out and "\u202e" not in out
    assert "/x\\x1b]0;pwned\\x07" in out and "[b]bold[/b]" in out


def test_tail_follow_is_bounded_by_max_seconds(db: Path) -> None:
    with SQLiteStore(db) as store:
        store.record_event(event(0))
    result = run(db, "events", "tail", "--follow", "--max-seconds", "0.2", "--interval", "0.05")
    assert result.exit_code == 0
    assert "/users/0" in result.stdout


# -- the real command, in separate processes -----------------------------------------------------


def _real(tmp_path: Path, *args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SCRAPEWARDEN_STATE": "sqlite:///state.db", "COLUMNS": "200"}
    return subprocess.run(
        [str(SCRAPEWARDEN), *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, **kw
    )


def test_real_command_shares_bans_with_a_running_server(tmp_path: Path) -> None:
    # The "server" has the store open the whole time, as a running app would.
    with SQLiteStore(tmp_path / "state.db") as server:
        added = _real(tmp_path, "ban", "add", "203.0.113.7", "--ttl", "1h", "--reason", "x")
        assert added.returncode == 0, added.stderr
        seen = server.get_ban("ip", "203.0.113.7")
        assert seen is not None and seen.reason == "x"

        listed = _real(tmp_path, "ban", "list", "--json")
        assert listed.returncode == 0, listed.stderr
        assert [(b["kind"], b["value"], b["reason"]) for b in json.loads(listed.stdout)] == [
            ("ip", "203.0.113.7", "x")
        ]

        removed = _real(tmp_path, "ban", "remove", "203.0.113.7")
        assert removed.returncode == 0, removed.stderr
        assert server.get_ban("ip", "203.0.113.7") is None
        assert server.prior_offences("ip", "203.0.113.7") == 1

        bad = _real(tmp_path, "ban", "add", "203.0.113.999")
        assert bad.returncode == 2
        assert "203.0.113.999" in bad.stderr
        assert server.list_bans() == []


def test_real_follow_prints_new_events_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    env = {**os.environ, "SCRAPEWARDEN_STATE": "sqlite:///state.db"}
    with SQLiteStore(tmp_path / "state.db") as server:
        server.record_event(event(0))
        server.flush()
        tail = subprocess.Popen(
            [
                str(SCRAPEWARDEN),
                "events",
                "tail",
                "-f",
                "-n",
                "1",
                "--json",
                "--interval",
                "0.05",
                "--max-seconds",
                "60",
            ],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert tail.stdout is not None
            # The first line is the existing event: from here on, tail is following.
            assert json.loads(tail.stdout.readline())["path"] == "/users/0"
            server.record_event(event(1, path="/users/new"))
            server.flush()
            assert json.loads(tail.stdout.readline())["path"] == "/users/new"
            tail.send_signal(signal.SIGINT)
            assert tail.wait(timeout=30) == 0
        finally:
            if tail.poll() is None:
                tail.kill()
                tail.wait()


def test_events_summary_gives_the_solve_rate(db: Path) -> None:
    with SQLiteStore(db) as store:
        for i in range(4):
            store.record_event(event(i, action="challenge", ts=time.time() - 60 + i))
        store.record_event(event(5, action="block", ts=time.time() - 30))
        now = time.time()
        store.record_event(event(6, action="challenge_passed", reasons=["pow", "webdriver"], ts=now - 20))
        store.record_event(event(7, action="challenge_failed", reasons=["pow", "replayed"], ts=now - 10))
        store.record_event(event(8, action="challenge", ts=time.time() - 3 * 86400))  # outside 24h
    result = run(db, "events", "summary", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["challenges"] == 4 and summary["passed"] == 1 and summary["solve_rate"] == 0.25
    assert summary["actions"] == {"challenge": 4, "block": 1}
    assert summary["passed_with_signs"] == {"webdriver": 1}
    assert summary["refused_by_reason"] == {"replayed": 1}
    everything = json.loads(run(db, "events", "summary", "--since", "0", "--json").stdout)
    assert everything["challenges"] == 5 and everything["solve_rate"] == 0.2
    text = run(db, "events", "summary").output
    assert "solve rate: 25.0%" in text and "refused answers: replayed 1" in text
