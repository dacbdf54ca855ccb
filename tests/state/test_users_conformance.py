"""Dashboard users and API tokens: the same behaviour from every StateStore backend."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

# tests/state is on sys.path (pytest's default import mode): the backends are listed once.
from test_conformance import BACKENDS, HOSTILE, NOW

from scrapewarden.state.base import ApiToken, StateStore, User
from scrapewarden.state.sqlite import SQLiteStore


@pytest.fixture(params=sorted(BACKENDS))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StateStore]:
    s = BACKENDS[request.param](tmp_path, request)
    yield s
    s.close()


def user(name: str = "ana", role: str = "analyst", **kw: object) -> User:
    fields: dict[str, object] = {
        "password_hash": "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA",
        "created": NOW,
        "password_changed": NOW,
    }
    fields.update(kw)
    return User(name=name, role=role, **fields)  # type: ignore[arg-type]


def token(digest: str = "a" * 64, owner: str = "ana", **kw: object) -> ApiToken:
    fields: dict[str, object] = {"created": NOW, "expires": NOW + 3600, "label": "ci"}
    fields.update(kw)
    return ApiToken(digest=digest, user=owner, **fields)  # type: ignore[arg-type]


def test_users_round_trip_and_replace(store: StateStore) -> None:
    assert store.get_user("ana") is None
    assert store.list_users() == []
    store.put_user(user())
    store.put_user(user("bo", "viewer"))
    assert store.get_user("ana") == user()
    assert [u.name for u in store.list_users()] == ["ana", "bo"]
    # Replacing keeps one user, with the new fields.
    store.put_user(user(role="admin", password_hash="$argon2id$new", password_changed=NOW + 5))
    got = store.get_user("ana")
    assert got is not None
    assert (got.role, got.password_hash, got.password_changed) == ("admin", "$argon2id$new", NOW + 5)
    assert len(store.list_users()) == 2


def test_returned_users_are_copies(store: StateStore) -> None:
    store.put_user(user())
    got = store.get_user("ana")
    assert got is not None
    got.role = "admin"
    assert store.get_user("ana") == user()


def test_unknown_role_and_empty_name_are_refused(store: StateStore) -> None:
    with pytest.raises(ValueError, match="role"):
        store.put_user(user(role="root"))
    with pytest.raises(ValueError, match="name"):
        store.put_user(user(name=""))
    assert store.list_users() == []


@pytest.mark.parametrize("name", [h for h in HOSTILE if h and "\x00" not in h])
def test_hostile_user_names_round_trip(store: StateStore, name: str) -> None:
    store.put_user(user(name))
    got = store.get_user(name)
    assert got is not None and got.name == name


def test_remove_user_takes_their_tokens(store: StateStore) -> None:
    store.put_user(user())
    store.put_user(user("bo"))
    store.add_token(token("a" * 64))
    store.add_token(token("b" * 64, created=NOW + 1))
    store.add_token(token("c" * 64, owner="bo"))
    assert [t.digest for t in store.list_tokens("ana")] == ["a" * 64, "b" * 64]
    assert store.remove_user("ana") is True
    assert store.remove_user("ana") is False
    assert store.get_user("ana") is None
    assert store.get_token("a" * 64) is None
    assert [t.digest for t in store.list_tokens()] == ["c" * 64]


def test_tokens_round_trip_and_remove(store: StateStore) -> None:
    store.put_user(user())
    assert store.get_token("a" * 64) is None
    store.add_token(token())
    store.add_token(token("d" * 64, expires=None, label="forever"))
    assert store.get_token("a" * 64) == token()
    forever = store.get_token("d" * 64)
    assert forever is not None and forever.expires is None and forever.active(NOW + 10**9)
    assert not token().active(NOW + 3600)
    assert store.remove_token("a" * 64) is True
    assert store.remove_token("a" * 64) is False
    assert store.get_token("a" * 64) is None


def test_sqlite_users_survive_reopening(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "s.db") as first:
        first.put_user(user())
        first.add_token(token())
    with SQLiteStore(tmp_path / "s.db") as second:
        assert second.get_user("ana") == user()
        assert second.get_token("a" * 64) == token()
