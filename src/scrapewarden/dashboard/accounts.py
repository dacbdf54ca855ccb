"""Dashboard users and API tokens: argon2id passwords, hashed tokens, role checks.

Shared by the web app and ``scrapewarden users``. Nothing here keeps a password or a token in
the clear: the store holds an argon2id PHC string per user and a SHA-256 digest per token (a
token is 256 random bits, so a fast hash is enough; passwords are guessable, so they get a
slow, memory-hard one).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from ..state.base import ROLES, ApiToken, Role, StateStore, User

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 1024
"""argon2 takes any length; a bound keeps one login from costing megabytes of hashing input."""
TOKEN_PREFIX = "swd_"
"""Marks a dashboard API token, so secret scanners (and people) recognise a leaked one."""
USER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")

_RANK = {"viewer": 1, "analyst": 2, "admin": 3}

# argon2-cffi's defaults follow RFC 9106's second recommendation (argon2id, 64 MiB, t=3).
_hasher = PasswordHasher()
# Verified against when the user does not exist, so an unknown name takes as long as a wrong
# password and login timing does not tell which names exist.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


class AccountError(ValueError):
    """A user or password that cannot be accepted; the message says why."""


def allows(role: str, needed: Role) -> bool:
    """Whether ``role`` may do what ``needed`` may (admin ⊃ analyst ⊃ viewer)."""
    return _RANK.get(role, 0) >= _RANK[needed]


def check_name(name: str) -> str:
    if not USER_NAME.fullmatch(name):
        raise AccountError(
            "a user name is 1-64 characters: letters, digits and . _ @ - (starting with a letter or digit)"
        )
    return name


def check_role(role: str) -> Role:
    if role not in ROLES:
        raise AccountError(f"unknown role {role!r}; choose one of {', '.join(ROLES)}")
    return role


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise AccountError(f"a password has at most {MAX_PASSWORD_LENGTH} characters")
    return password


def hash_password(password: str) -> str:
    return _hasher.hash(check_password(password))


def verify_password(user: User | None, password: str) -> bool:
    """True if ``password`` is ``user``'s. Takes as long for an unknown user as for a known one."""
    if len(password) > MAX_PASSWORD_LENGTH:
        return False
    try:
        return _hasher.verify(user.password_hash if user else _DUMMY_HASH, password) and user is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(user: User) -> bool:
    """True when the stored hash used weaker parameters than today's (rehash at next login)."""
    try:
        return _hasher.check_needs_rehash(user.password_hash)
    except InvalidHashError:
        return False


def add_user(store: StateStore, name: str, role: str, password: str, *, now: float) -> User:
    if store.get_user(check_name(name)) is not None:
        raise AccountError(f"user {name!r} exists already (use passwd to change the password)")
    user = User(name, check_role(role), hash_password(password), now, now)
    store.put_user(user)
    return user


def set_password(store: StateStore, name: str, password: str, *, now: float) -> User:
    """New password; every session of this user issued before now stops working."""
    user = store.get_user(name)
    if user is None:
        raise AccountError(f"no user {name!r}")
    user.password_hash = hash_password(password)
    user.password_changed = now
    store.put_user(user)
    return user


def set_role(store: StateStore, name: str, role: str) -> User:
    user = store.get_user(name)
    if user is None:
        raise AccountError(f"no user {name!r}")
    user.role = check_role(role)
    store.put_user(user)
    return user


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


@dataclass(frozen=True, slots=True)
class NewToken:
    token: str
    """Shown once; only its digest is stored."""
    record: ApiToken


def make_token(store: StateStore, name: str, *, now: float, ttl: float | None, label: str = "") -> NewToken:
    if store.get_user(name) is None:
        raise AccountError(f"no user {name!r}")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    record = ApiToken(token_digest(token), name, now, now + ttl if ttl else None, label[:100])
    store.add_token(record)
    return NewToken(token, record)


def user_for_token(store: StateStore, token: str, *, now: float) -> User | None:
    """The user a bearer token speaks for, if the token is known, unexpired and its user exists."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    record = store.get_token(token_digest(token))
    if record is None or not record.active(now):
        return None
    return store.get_user(record.user)
