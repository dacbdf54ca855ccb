"""`scrapewarden audit ...`: ban commands leave audit entries; tampering with the SQLite rows
(one edited, one deleted, two swapped) makes `audit verify` fail naming the entry."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from scrapewarden.cli.main import main
from scrapewarden.core.audit import AuditRecord
from scrapewarden.state.sqlite import SQLiteStore

SCRAPEWARDEN = Path(sys.executable).with_name("scrapewarden")


def run(db: Path, *args: str, user: str = "alice") -> Result:
    runner = CliRunner(
        env={"COLUMNS": "200", "SCRAPEWARDEN_STATE": f"sqlite:///{db}", "SCRAPEWARDEN_USER": user}
    )
    return runner.invoke(main, list(args), catch_exceptions=False)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "state.db"
    assert run(path, "ban", "add", "203.0.113.7", "--reason", "scraping /users").exit_code == 0
    assert run(path, "ban", "add", "198.51.100.0/24", "--ttl", "0", user="bob").exit_code == 0
    assert run(path, "ban", "remove", "203.0.113.7").exit_code == 0
    assert run(path, "ban", "add", "42", "--kind", "account", "--as", "carol").exit_code == 0
    return path


def listed(db: Path) -> list[dict[str, object]]:
    result = run(db, "audit", "list", "--json", "--all")
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_ban_commands_write_audit_entries(db: Path) -> None:
    entries = listed(db)
    assert [(e["seq"], e["actor"], e["action"], e["target"]) for e in entries] == [
        (1, "alice", "ban.add", "ip:203.0.113.7"),
        (2, "bob", "ban.add", "network:198.51.100.0/24"),
        (3, "alice", "ban.remove", "ip:203.0.113.7"),
        (4, "carol", "ban.add", "account:42"),
    ]
    details = entries[0]["details"]
    assert isinstance(details, dict) and details["reason"] == "scraping /users" and details["offences"] == 1
    assert details["expires"] is not None
    # Removing a ban that is not there changes nothing, so it is not audited.
    assert run(db, "ban", "remove", "203.0.113.7").exit_code == 1
    assert len(listed(db)) == 4


def test_verify_passes_on_an_intact_log_and_prints_the_head(db: Path) -> None:
    result = run(db, "audit", "verify")
    assert result.exit_code == 0, result.output
    assert "4 entries verified" in result.stdout
    head = listed(db)[-1]["hash"]
    assert f"head: 4 {head}" in result.stdout
    assert run(db, "audit", "verify", "--expect-head", str(head)).exit_code == 0
    # The head of an earlier moment is still in the chain.
    assert run(db, "audit", "verify", "--expect-head", str(listed(db)[1]["hash"])).exit_code == 0
    table = run(db, "audit", "list")
    assert "ban.remove" in table.stdout and "carol" in table.stdout


def tamper(db: Path, sql: str, *params: object) -> None:
    con = sqlite3.connect(db)
    with con:
        con.execute(sql, params)
    con.close()


def test_one_edited_row_fails_verify_naming_it(db: Path) -> None:
    tamper(db, "UPDATE audit SET actor = 'mallory' WHERE seq = 2")
    result = run(db, "audit", "verify")
    assert result.exit_code == 1
    assert "BROKEN at entry 2" in result.stderr and "altered" in result.stderr
    assert "1 entries before it verified" in result.stderr


def test_an_edited_detail_fails_verify(db: Path) -> None:
    tamper(db, "UPDATE audit SET details = replace(details, 'scraping', 'testing') WHERE seq = 1")
    result = run(db, "audit", "verify", "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["broken_seq"] == 1


def test_a_deleted_row_fails_verify(db: Path) -> None:
    tamper(db, "DELETE FROM audit WHERE seq = 3")
    result = run(db, "audit", "verify")
    assert result.exit_code == 1 and "BROKEN at entry 3" in result.stderr and "missing" in result.stderr


def test_the_last_row_deleted_fails_verify(db: Path) -> None:
    tamper(db, "DELETE FROM audit WHERE seq = 4")
    result = run(db, "audit", "verify")
    assert result.exit_code == 1 and "BROKEN at entry 4" in result.stderr


def test_swapped_rows_fail_verify(db: Path) -> None:
    # Swap the contents of rows 2 and 3 (keeping their seq numbers): a reorder.
    con = sqlite3.connect(db)
    with con:
        rows = {
            r[0]: r[1:]
            for r in con.execute("SELECT seq, ts, actor, action, target, details, prev_hash, hash FROM audit")
        }
        for seq, other in ((2, 3), (3, 2)):
            con.execute(
                "UPDATE audit SET ts=?, actor=?, action=?, target=?, details=?, prev_hash=?, hash=? "
                "WHERE seq=?",
                (*rows[other], seq),
            )
    con.close()
    result = run(db, "audit", "verify")
    assert result.exit_code == 1 and "BROKEN at entry 2" in result.stderr


def test_a_rewritten_chain_passes_alone_but_not_against_the_anchor(db: Path) -> None:
    anchor = str(listed(db)[-1]["hash"])
    tamper(db, "DELETE FROM audit")
    tamper(db, "DELETE FROM meta WHERE key = 'audit_head'")
    store = SQLiteStore(db)
    for i in range(4):
        store.append_audit(AuditRecord(1_700_000_000.0 + i, "mallory", "ban.add", f"ip:192.0.2.{i}"))
    store.close()
    assert run(db, "audit", "verify").exit_code == 0
    result = run(db, "audit", "verify", "--expect-head", anchor)
    assert result.exit_code == 1 and "expected head" in result.stderr


def test_bad_anchor_is_a_usage_error(db: Path) -> None:
    assert run(db, "audit", "verify", "--expect-head", "nothex").exit_code == 2


@pytest.mark.skipif(not SCRAPEWARDEN.exists(), reason="the scrapewarden script is not installed")
def test_as_a_real_command(db: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "SCRAPEWARDEN_STATE": f"sqlite:///{db}", "SCRAPEWARDEN_USER": "dave"}
    ok = subprocess.run(
        [str(SCRAPEWARDEN), "audit", "verify"], env=env, capture_output=True, text=True, timeout=60
    )
    assert ok.returncode == 0 and "4 entries verified" in ok.stdout
    added = subprocess.run(
        [str(SCRAPEWARDEN), "ban", "add", "192.0.2.1"], env=env, capture_output=True, text=True, timeout=60
    )
    assert added.returncode == 0, added.stderr
    assert listed(db)[-1]["actor"] == "dave"
    tamper(db, "UPDATE audit SET target = 'ip:192.0.2.2' WHERE seq = 5")
    bad = subprocess.run(
        [str(SCRAPEWARDEN), "audit", "verify"], env=env, capture_output=True, text=True, timeout=60
    )
    assert bad.returncode == 1 and "BROKEN at entry 5" in bad.stderr


def test_writing_a_policy_is_audited_with_its_hash(tmp_path: Path) -> None:
    import hashlib

    db = tmp_path / "audit.db"
    target = tmp_path / "scrapewarden.toml"
    result = run(db, "init", str(target), user="gina")
    assert result.exit_code == 0, result.output
    (entry,) = listed(db)
    assert (entry["actor"], entry["action"], entry["target"]) == ("gina", "policy.write", str(target))
    details = entry["details"]
    assert isinstance(details, dict)
    assert details["sha256"] == hashlib.sha256(target.read_bytes()).hexdigest()
    assert run(db, "init", str(target), "--force").exit_code == 0
    assert [e["details"]["how"] for e in listed(db)] == ["init", "init --force"]  # type: ignore[index]
    assert run(db, "init", "-").exit_code == 0  # to stdout: nothing changed, nothing audited
    assert len(listed(db)) == 2
