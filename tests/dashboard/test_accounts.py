"""Passwords, tokens, sessions, CSRF and the login guard, without a server."""

from __future__ import annotations

import pytest

from scrapewarden.core.decision import Action
from scrapewarden.dashboard import accounts
from scrapewarden.dashboard.login_guard import LoginBudget, LoginGuard
from scrapewarden.dashboard.sessions import SessionCodec, stored_key
from scrapewarden.state.memory import MemoryStore

NOW = 1_800_000_000.0
PASSWORD = "a long enough secret"


def test_passwords_are_argon2id_and_verified() -> None:
    store = MemoryStore()
    user = accounts.add_user(store, "ana", "analyst", PASSWORD, now=NOW)
    assert user.password_hash.startswith("$argon2id$")
    assert PASSWORD not in user.password_hash
    assert accounts.verify_password(user, PASSWORD)
    assert not accounts.verify_password(user, PASSWORD + "x")
    assert not accounts.verify_password(None, PASSWORD)  # unknown user: checked against a dummy hash
    assert not accounts.verify_password(user, "x" * (accounts.MAX_PASSWORD_LENGTH + 1))
    with pytest.raises(accounts.AccountError, match="exists"):
        accounts.add_user(store, "ana", "viewer", PASSWORD, now=NOW)


@pytest.mark.parametrize("name", ["", "-dash", "a b", "<img>", "x" * 65, "ünï"])
def test_bad_user_names_are_refused(name: str) -> None:
    with pytest.raises(accounts.AccountError):
        accounts.add_user(MemoryStore(), name, "viewer", PASSWORD, now=NOW)


def test_short_passwords_and_unknown_roles_are_refused() -> None:
    with pytest.raises(accounts.AccountError, match="at least"):
        accounts.add_user(MemoryStore(), "ana", "viewer", "short", now=NOW)
    with pytest.raises(accounts.AccountError, match="role"):
        accounts.add_user(MemoryStore(), "ana", "root", PASSWORD, now=NOW)


def test_roles_nest() -> None:
    assert accounts.allows("admin", "analyst") and accounts.allows("analyst", "viewer")
    assert not accounts.allows("viewer", "analyst") and not accounts.allows("analyst", "admin")
    assert not accounts.allows("root", "viewer")


def test_password_change_moves_the_stamp() -> None:
    store = MemoryStore()
    accounts.add_user(store, "ana", "analyst", PASSWORD, now=NOW)
    changed = accounts.set_password(store, "ana", "another fine password", now=NOW + 5)
    assert changed.password_changed == NOW + 5
    assert accounts.verify_password(store.get_user("ana"), "another fine password")


def test_tokens_are_stored_hashed_and_expire() -> None:
    store = MemoryStore()
    accounts.add_user(store, "ana", "analyst", PASSWORD, now=NOW)
    made = accounts.make_token(store, "ana", now=NOW, ttl=60)
    assert made.token.startswith("swd_")
    stored = store.list_tokens("ana")
    assert [t.digest for t in stored] == [accounts.token_digest(made.token)]
    assert made.token not in repr(stored)
    user = accounts.user_for_token(store, made.token, now=NOW + 59)
    assert user is not None and user.name == "ana"
    assert accounts.user_for_token(store, made.token, now=NOW + 60) is None
    assert accounts.user_for_token(store, made.token[:-1] + "x", now=NOW) is None
    store.remove_user("ana")
    assert accounts.user_for_token(store, made.token, now=NOW) is None


def test_session_cookie_round_trip_tamper_and_age() -> None:
    codec = SessionCodec(b"k" * 32, max_age=600)
    session = codec.new("ana", now=NOW, password_changed=NOW - 10)
    cookie = codec.dump(session)
    assert codec.load(cookie, now=NOW + 1) == session
    assert codec.load(cookie[:-2] + ("AA" if not cookie.endswith("AA") else "BB"), now=NOW) is None
    assert SessionCodec(b"other key" * 4).load(cookie, now=NOW) is None
    assert codec.load(cookie, now=NOW + 601) is None  # too old by our clock
    assert codec.load("", now=NOW) is None and codec.load("x" * 5000, now=NOW) is None


def test_csrf_token_is_bound_to_the_session() -> None:
    codec = SessionCodec(b"k" * 32)
    one, two = codec.new(now=NOW), codec.new(now=NOW)
    assert codec.csrf_ok(one, codec.csrf_token(one))
    assert not codec.csrf_ok(two, codec.csrf_token(one))
    assert not codec.csrf_ok(one, "") and not codec.csrf_ok(None, codec.csrf_token(one))


def test_session_key_is_made_once_and_shared_through_the_store() -> None:
    store = MemoryStore()
    assert stored_key(store) == stored_key(store)
    assert len(stored_key(store)) == 32


def _attempt(guard: LoginGuard, peer: str, name: str) -> Action:
    return guard.check(peer=peer, name=name, headers=[(b"user-agent", b"curl/8")]).action


def test_login_guard_holds_names_and_addresses_to_their_budgets() -> None:
    now = [NOW]
    guard = LoginGuard(LoginBudget(per_address_per_minute=6, per_name_per_minute=3), clock=lambda: now[0])
    actions = [_attempt(guard, "203.0.113.1", "ana") for _ in range(3)]
    assert actions[:2] == [Action.ALLOW, Action.ALLOW] and actions[2] is not Action.ALLOW
    # The same name from elsewhere is held too (per name); another name from here is not yet.
    assert _attempt(guard, "198.51.100.2", "ana") is not Action.ALLOW
    assert _attempt(guard, "203.0.113.1", "bob") is Action.ALLOW
    # Names compare case-insensitively: "ANA" is the same account.
    assert _attempt(guard, "198.51.100.3", "ANA") is not Action.ALLOW
    # Once the attempts have left the sliding minute (two windows), the budget is back.
    now[0] += 121
    assert _attempt(guard, "198.51.100.9", "ana") is Action.ALLOW
    guard.close()


def test_login_guard_bans_an_address_that_keeps_going() -> None:
    now = [NOW]
    guard = LoginGuard(LoginBudget(per_address_per_minute=4, blocks_before_ban=3), clock=lambda: now[0])
    for i in range(40):
        _attempt(guard, "203.0.113.7", f"user{i}")
    decision = guard.check(peer="203.0.113.7", name="fresh", headers=[])
    assert decision.action is Action.BLOCK and decision.ban_key == "ip:203.0.113.7"
    assert _attempt(guard, "198.51.100.1", "fresh") is Action.ALLOW  # only that address
    guard.close()
