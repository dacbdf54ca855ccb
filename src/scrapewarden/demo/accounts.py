"""Who is who on the demo site: generated people, people who sign up, and login sessions.

The generated population is shared (cached per seed) and never changes; sign-ups and sessions
belong to one site object, in memory. A session is a random ``sid`` cookie mapped to an account
id. Sign-ups get ids above the generated ones and ``created = clock()``, so they are the only
young accounts on the site.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from itertools import chain

from .people import DEMO_PASSWORD, Person, Population, search_key

SESSION_COOKIE = "sid"
MAX_SESSIONS = 200_000
"""Oldest sessions are forgotten past this, so a client logging in in a loop cannot fill memory."""
MAX_SIGNUPS = 100_000
SEARCH_LIMIT = 20
MAX_QUERY = 100

HANDLE_RE = re.compile(r"[a-z0-9._]{3,30}")
_PASSWORD_ITERATIONS = 20_000
"""Low on purpose: a demo, where signing up must not hold up the event loop for long."""


@dataclass(frozen=True, slots=True)
class _Password:
    salt: bytes
    digest: bytes


def _hash(password: str, salt: bytes) -> bytes:
    return hashlib.pbkdf2_hmac("sha256", password.encode("utf-8", "replace"), salt, _PASSWORD_ITERATIONS)


class Accounts:
    def __init__(self, population: Population, clock: Callable[[], float]) -> None:
        self.population = population
        self.clock = clock
        self._signups: dict[int, Person] = {}
        self._signup_handles: dict[str, Person] = {}
        self._signup_keys: dict[int, str] = {}
        self._passwords: dict[int, _Password] = {}
        self._sessions: dict[str, int] = {}
        self._next_id = population.n + 1

    # -- people ----------------------------------------------------------------------------

    def get(self, person_id: int) -> Person | None:
        return self.population.get(person_id) or self._signups.get(person_id)

    def by_handle(self, handle: str) -> Person | None:
        handle = handle.lower()
        return self.population.by_handle.get(handle) or self._signup_handles.get(handle)

    def following_of(self, person_id: int) -> tuple[int, ...]:
        if person_id <= self.population.n:
            return self.population.following[person_id] if person_id >= 1 else ()
        # Someone who just signed up follows a few popular accounts, so their feed is not empty.
        return self.population.public_feed_people[:10] if person_id in self._signups else ()

    def followers_of(self, person_id: int) -> tuple[int, ...]:
        if 1 <= person_id <= self.population.n:
            return self.population.followers[person_id]
        return ()

    def search(self, query: str, limit: int = SEARCH_LIMIT) -> list[Person]:
        """People whose name or handle starts with ``query`` (first), then those containing it."""
        q = " ".join(query.casefold().lstrip("@").split())[:MAX_QUERY]
        if not q:
            return []
        word_start = " " + q
        starts: list[Person] = []
        contains: list[Person] = []
        keys = chain(enumerate(self.population.search_keys, start=1), self._signup_keys.items())
        for person_id, key in keys:
            if word_start in key:
                starts.append(self._person(person_id))
                if len(starts) >= limit:
                    break
            elif len(contains) < limit and q in key:
                contains.append(self._person(person_id))
        return (starts + contains)[:limit]

    def _person(self, person_id: int) -> Person:
        person = self.get(person_id)
        assert person is not None
        return person

    # -- signing up and in -----------------------------------------------------------------

    def sign_up(self, name: str, handle: str, password: str) -> Person | str:
        """The new account, or what is wrong with the request."""
        name = " ".join(name.split())
        handle = handle.strip().lower()
        if not 1 <= len(name) <= 80:
            return "Please give a name of at most 80 characters."
        if not HANDLE_RE.fullmatch(handle):
            return "A handle is 3-30 lower-case letters, digits, dots or underscores."
        if self.by_handle(handle) is not None:
            return "That handle is taken."
        if len(password) < 8 or len(password) > 200:
            return "A password is 8-200 characters."
        if len(self._signups) >= MAX_SIGNUPS:
            return "Sign-ups are closed for now."
        person = Person(
            id=self._next_id,
            name=name,
            handle=handle,
            city="",
            bio="New here.",
            birth_year=None,
            email=f"{handle}@example.com",
            phone="",
            created=self.clock(),
            avatar=self._next_id % 8,
        )
        self._next_id += 1
        salt = secrets.token_bytes(16)
        self._passwords[person.id] = _Password(salt, _hash(password, salt))
        self._signups[person.id] = person
        self._signup_handles[handle] = person
        self._signup_keys[person.id] = search_key(handle, name)
        return person

    def check_password(self, handle: str, password: str) -> Person | None:
        person = self.by_handle(handle.strip())
        if person is None:
            return None
        stored = self._passwords.get(person.id)
        if stored is None:
            # A generated person: everyone shares the published demo password.
            ok = hmac.compare_digest(password.encode("utf-8", "replace"), DEMO_PASSWORD.encode())
        else:
            ok = hmac.compare_digest(_hash(password, stored.salt), stored.digest)
        return person if ok else None

    # -- sessions --------------------------------------------------------------------------

    def open_session(self, person: Person) -> str:
        sid = secrets.token_urlsafe(24)
        if len(self._sessions) >= MAX_SESSIONS:
            self._sessions.pop(next(iter(self._sessions)))
        self._sessions[sid] = person.id
        return sid

    def close_session(self, sid: str | None) -> None:
        if sid:
            self._sessions.pop(sid, None)

    def session_account(self, sid: str | None) -> Person | None:
        if not sid:
            return None
        person_id = self._sessions.get(sid)
        return None if person_id is None else self.get(person_id)
