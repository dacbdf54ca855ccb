"""Operator allows: the same behaviour from every StateStore backend (memory, SQLite, Redis
single/Cluster/Sentinel/TLS), as test_conformance.py does for bans."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

# tests/state is on sys.path (pytest's default import mode): the backends are listed once.
from test_conformance import BACKENDS, HOSTILE, NOW

from scrapewarden.state.base import Allow, StateStore
from scrapewarden.state.url import open_state


@pytest.fixture(params=sorted(BACKENDS))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StateStore]:
    s = BACKENDS[request.param](tmp_path, request)
    yield s
    s.close()


def allow(value: str = "203.0.113.7", *, kind: str = "ip", created: float = NOW, **kw: object) -> Allow:
    kw.setdefault("expires", None)
    return Allow(kind=kind, value=value, created=created, **kw)  # type: ignore[arg-type]


def test_add_then_get_returns_what_was_stored(store: StateStore) -> None:
    stored = store.add_allow(allow(expires=NOW + 60, reason="contracted crawl", by="ana"))
    assert stored == Allow("ip", "203.0.113.7", NOW, NOW + 60, "contracted crawl", "ana")
    assert store.get_allow("ip", "203.0.113.7") == stored
    assert store.get_allow("ip", "203.0.113.8") is None
    # An allow is not a ban, and a ban is not an allow.
    assert store.get_ban("ip", "203.0.113.7") is None and store.list_bans() == []


def test_add_replaces_the_allow_for_the_same_actor(store: StateStore) -> None:
    store.add_allow(allow(expires=NOW + 60, reason="first"))
    store.add_allow(allow(created=NOW + 10, expires=NOW + 600, reason="second", by="bo"))
    assert [(a.reason, a.expires, a.by) for a in store.list_allows()] == [("second", NOW + 600, "bo")]


def test_same_value_different_kinds_are_different_allows(store: StateStore) -> None:
    store.add_allow(allow("42", kind="account", reason="a"))
    store.add_allow(allow("42", kind="session", reason="s"))
    account, session = store.get_allow("account", "42"), store.get_allow("session", "42")
    assert account is not None and account.reason == "a"
    assert session is not None and session.reason == "s"
    assert store.get_allow("fingerprint", "42") is None


def test_remove(store: StateStore) -> None:
    store.add_allow(allow())
    assert store.remove_allow("ip", "203.0.113.7") is True
    assert store.get_allow("ip", "203.0.113.7") is None
    assert store.list_allows() == []
    assert store.remove_allow("ip", "203.0.113.7") is False


def test_list_keeps_expired_allows_out_only_when_given_now(store: StateStore) -> None:
    store.add_allow(allow("198.51.100.1", expires=NOW - 1))  # expired
    store.add_allow(allow("198.51.100.2", created=NOW + 1, expires=NOW + 3600))
    store.add_allow(allow("198.51.100.0/24", kind="network", created=NOW + 2))
    store.add_allow(allow("198.51.100.3", created=NOW + 3, expires=NOW))  # ends exactly now: over
    assert [a.value for a in store.list_allows(NOW)] == ["198.51.100.2", "198.51.100.0/24"]
    assert len(store.list_allows()) == 4
    assert [a.value for a in store.list_allows(NOW + 7200)] == ["198.51.100.0/24"]
    expired = store.get_allow("ip", "198.51.100.1")
    assert expired is not None and not expired.active(NOW)


def test_prune_deletes_only_allows_expired_before_the_time(store: StateStore) -> None:
    store.add_allow(allow("198.51.100.1", expires=NOW - 10))
    store.add_allow(allow("198.51.100.2", created=NOW + 1, expires=NOW + 10))
    store.add_allow(allow("acct", kind="account", created=NOW + 2))  # never expires
    assert store.prune_allows(NOW) == 1
    assert [a.value for a in store.list_allows()] == ["198.51.100.2", "acct"]
    assert store.prune_allows(NOW + 100) == 1
    assert [a.value for a in store.list_allows()] == ["acct"]


def test_unknown_kind_is_refused(store: StateStore) -> None:
    with pytest.raises(ValueError, match="unknown ban kind"):
        store.add_allow(allow(kind="cookie"))


def test_returned_allows_are_copies(store: StateStore) -> None:
    store.add_allow(allow(reason="kept"))
    got = store.get_allow("ip", "203.0.113.7")
    assert got is not None
    got.reason = "changed"
    listed = store.list_allows()
    listed[0].reason = "changed too"
    again = store.get_allow("ip", "203.0.113.7")
    assert again is not None and again.reason == "kept"


@pytest.mark.parametrize("text", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_strings_round_trip(store: StateStore, text: str) -> None:
    store.add_allow(allow(text, kind="account", reason=text, by=text))
    got = store.get_allow("account", text)
    assert got is not None and (got.value, got.reason, got.by) == (text, text, text)
    assert [(a.value, a.reason, a.by) for a in store.list_allows(NOW)] == [(text, text, text)]


def test_an_allow_written_by_one_process_is_seen_by_another(store: StateStore) -> None:
    if store.url.startswith("memory"):
        pytest.skip("memory:// is one process's own")
    other = open_state(store.url)
    try:
        store.add_allow(allow("partner-7", kind="account", reason="contract", by="ana"))
        assert [(a.key, a.by) for a in other.list_allows(NOW)] == [("account:partner-7", "ana")]
        assert other.remove_allow("account", "partner-7") is True
        assert store.list_allows() == []
    finally:
        other.close()
