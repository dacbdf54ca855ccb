"""open_state: which URL opens which store, and what a bad URL says."""

from __future__ import annotations

from pathlib import Path

import pytest

from scrapewarden.state.errors import StateURLError
from scrapewarden.state.memory import MemoryStore
from scrapewarden.state.sqlite import SQLiteStore
from scrapewarden.state.url import open_state, redact


def test_memory_is_the_default_when_nothing_is_configured() -> None:
    store = open_state(env={})
    assert isinstance(store, MemoryStore) and store.url == "memory://"
    store.close()


def test_the_environment_variable_is_read_when_no_url_is_given(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'env.db'}"
    store = open_state(env={"SCRAPEWARDEN_STATE": url})
    try:
        assert isinstance(store, SQLiteStore) and store.url == url
    finally:
        store.close()
    assert (tmp_path / "env.db").exists()


def test_an_explicit_url_wins_over_the_environment() -> None:
    store = open_state("memory://", env={"SCRAPEWARDEN_STATE": "redis://localhost"})
    assert isinstance(store, MemoryStore)
    store.close()


def test_three_slashes_is_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    store = open_state("sqlite:///sub/state.db")
    try:
        assert isinstance(store, SQLiteStore) and store.path == "sub/state.db"
    finally:
        store.close()
    assert (tmp_path / "sub" / "state.db").exists()


def test_four_slashes_is_an_absolute_path(tmp_path: Path) -> None:
    target = tmp_path / "abs.db"
    assert str(target).startswith("/")
    store = open_state(f"sqlite:///{target}")  # "sqlite:///" + "/tmp/..." = four slashes
    try:
        assert isinstance(store, SQLiteStore) and store.path == str(target)
    finally:
        store.close()
    assert target.exists()


def test_percent_escapes_in_the_path_are_decoded(tmp_path: Path) -> None:
    store = open_state(f"sqlite:///{tmp_path}/my%20state.db")
    store.close()
    assert (tmp_path / "my state.db").exists()


def test_retention_is_passed_to_sqlite(tmp_path: Path) -> None:
    store = open_state(f"sqlite:///{tmp_path / 's.db'}", retention_seconds=60)
    try:
        assert isinstance(store, SQLiteStore) and store.retention_seconds == 60
    finally:
        store.close()


def test_redis_says_it_arrives_later_and_hides_the_password() -> None:
    with pytest.raises(StateURLError, match="issue 7") as info:
        open_state("redis://:hunter2@cache.internal:6379/0")
    message = str(info.value)
    assert "hunter2" not in message and "cache.internal" in message


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("postgres://db/state", "unknown scheme"),
        ("sqlite://host/state.db", "no host"),
        ("sqlite:///", "no database file"),
        ("sqlite://", "no database file"),
        ("sqlite:///dir/", "no database file"),
        ("sqlite:///state.db?mode=ro", "no ?options"),
        ("sqlite:///:memory:", "memory://"),
        ("memory://somewhere", "takes no host"),
        ("not a url at all", "unknown scheme"),
        ("http://[::1", "bad state URL"),
    ],
)
def test_bad_urls_are_named_in_the_error(url: str, says: str) -> None:
    with pytest.raises(StateURLError) as info:
        open_state(url)
    assert says in str(info.value)
    assert repr(url) in str(info.value)


def test_redact_only_touches_passwords() -> None:
    assert redact("redis://user:pw@h:1/0") == "redis://user:***@h:1/0"
    assert redact("sqlite:///x.db") == "sqlite:///x.db"
