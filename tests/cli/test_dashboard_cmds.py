"""`scrapewarden users ...` and `scrapewarden dashboard`, in-process and as a real command."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner, Result

from scrapewarden.cli.main import main
from scrapewarden.dashboard.accounts import user_for_token, verify_password
from scrapewarden.state.sqlite import SQLiteStore

SCRAPEWARDEN = Path(sys.executable).with_name("scrapewarden")
PASSWORD = "a perfectly long password"


def run(db: Path, *args: str, stdin: str | None = None) -> Result:
    runner = CliRunner(env={"SCRAPEWARDEN_STATE": f"sqlite:///{db}"})
    return runner.invoke(main, list(args), input=stdin)


def test_users_add_reads_the_password_from_stdin(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    result = run(db, "users", "add", "ada", "--role", "admin", stdin=PASSWORD + "\n")
    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output
    with SQLiteStore(db) as store:
        user = store.get_user("ada")
        assert user is not None and user.role == "admin" and verify_password(user, PASSWORD)
    # No password option exists: it cannot end up in argv.
    assert run(db, "users", "add", "bo", "--role", "viewer", "--password", PASSWORD).exit_code == 2


def test_users_add_refuses_bad_input_and_stores_nothing(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    assert run(db, "users", "add", "ada", "--role", "admin", stdin="short\n").exit_code == 1
    assert run(db, "users", "add", "ada", "--role", "admin", stdin="").exit_code == 1
    assert run(db, "users", "add", "ada", "--role", "root", stdin=PASSWORD + "\n").exit_code == 2
    assert run(db, "users", "add", "<b>", "--role", "admin", stdin=PASSWORD + "\n").exit_code == 1
    listed = run(db, "users", "list")
    assert listed.exit_code == 0 and "no users" in listed.output


def test_passwd_remove_and_tokens(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    run(db, "users", "add", "ana", "--role", "analyst", stdin=PASSWORD + "\n")
    assert run(db, "users", "passwd", "ana", stdin="the new long password\n").exit_code == 0
    assert run(db, "users", "passwd", "nobody", stdin="the new long password\n").exit_code == 1
    made = run(db, "users", "token", "ana", "--ttl", "1h", "--label", "ci")
    assert made.exit_code == 0, made.output
    token = made.stdout.strip()
    with SQLiteStore(db) as store:
        user = store.get_user("ana")
        assert user is not None and verify_password(user, "the new long password")
        found = user_for_token(store, token, now=time.time())
        assert found is not None and found.name == "ana"
        assert all(t.digest != token for t in store.list_tokens())
    assert "ana\tanalyst\t1 token(s)" in run(db, "users", "list").output
    assert "revoked 1" in run(db, "users", "token", "ana", "--revoke-all").output
    assert run(db, "users", "remove", "ana").exit_code == 0
    assert run(db, "users", "remove", "ana").exit_code == 1


@pytest.mark.skipif(not SCRAPEWARDEN.exists(), reason="the scrapewarden script is not installed here")
def test_dashboard_command_serves_and_says_how_to_make_the_first_admin(tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    state = f"sqlite:///{tmp_path}/s.db"
    proc = subprocess.Popen(
        [str(SCRAPEWARDEN), "dashboard", "--listen", f"127.0.0.1:{port}", "--state", state],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        answer = None
        while time.monotonic() < deadline:
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/login", timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                time.sleep(0.2)
        assert answer is not None and answer.status_code == 200
        assert 'id="first-run"' in answer.text and "scrapewarden users add" in answer.text
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=20)
    assert "No dashboard users yet" in err and "--role admin" in err
