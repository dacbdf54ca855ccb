"""Secret keys kept in the state store so that every instance sharing it uses the same one.

Two settings hold such keys: ``privacy.pseudonym_key`` (the Warden's pseudonyms, when the policy
names no key) and ``challenge.key`` (the challenge service's signatures, likewise). Each is
read at start-up, or made there by whichever instance comes first.

A store that cannot answer at start-up (Redis unreachable, a broken SQLite file) leaves the
instance with a key of its own: the Redis store answers from its local mirror and queues the new
key for when Redis is back, other stores raise and a process key is used. Such a key is
*provisional*: the owner asks :func:`shared_key` again from time to time (the Warden does, with
its ban refresh, every two seconds) and switches to what the store holds once it can answer —
its own key if it was the first to be stored, another instance's otherwise. So instances
started during an outage converge on one key. What they signed or pseudonymised meanwhile is
described in docs/state.md.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass

from .base import StateStore

log = logging.getLogger("scrapewarden")

PSEUDONYM_KEY = "privacy.pseudonym_key"
CHALLENGE_KEY = "challenge.key"


@dataclass(frozen=True, slots=True)
class StoredKey:
    value: bytes
    provisional: bool = False
    """True: made or read while the store could not answer, so perhaps not the shared key."""


def _unreachable(store: StateStore) -> bool:
    """True while the store answers from local state (only the Redis store says so)."""
    return bool(getattr(store, "degraded", False))


def stored_key(store: StateStore, name: str, what: str) -> StoredKey:
    """The key in setting ``name``, made on first use; a provisional one when the store cannot
    answer. ``what`` names it in the log ("challenge key"); the key itself is never logged."""
    try:
        key = store.get_setting(name)
        if key is None:
            key = secrets.token_hex(32)
            store.set_setting(name, key)
            store.flush()
            key = store.get_setting(name) or key  # another process won
        return StoredKey(bytes.fromhex(key), provisional=_unreachable(store))
    except Exception:
        log.exception("could not read the %s from the store; using a process key until it can", what)
        return StoredKey(secrets.token_bytes(32), provisional=True)


def shared_key(store: StateStore, name: str, mine: bytes) -> bytes | None:
    """The key every instance shares, once the store can tell it; None while it still cannot.

    A store that holds no key yet (a failing store at start-up; a key whose queued write was
    lost) is given ``mine``, as at start-up, and whatever it then holds is the answer.
    """
    if _unreachable(store):
        return None
    try:
        key = store.get_setting(name)
        if key is None:
            store.set_setting(name, mine.hex())
            store.flush()
            key = store.get_setting(name)
        if key is None or _unreachable(store):
            return None
        return bytes.fromhex(key)
    except Exception:  # still failing, or a malformed value: ask again later
        log.debug("the shared %s cannot be read yet", name, exc_info=True)
        return None
