"""Signed session cookies and the CSRF tokens tied to them.

The cookie holds a small signed (itsdangerous, HMAC-SHA1 over a derived key) JSON object:
a random session id, the user name (or none before login), when it was issued, and the
user's ``password_changed`` stamp at login. It is not encrypted: it says nothing secret. A
session is valid while its signature checks, it is younger than ``max_age``, its user still
exists, and that user's password has not changed since (a password change logs everyone out).

Every visitor, even before logging in, gets a session id, so the login form has a CSRF token
too. The CSRF token is an HMAC of the session id under the same key: a page can only carry
it if the server rendered it for this cookie. Logging in issues a new session id (no session
fixation).

Logging out also revokes the session id *in the store*: a single-use mark
(``StateStore.spend_once``) that lives until the session would have expired anyway, read by
every dashboard process on that store, so a copy of the cookie taken before logout is refused
after it. An admin can end every session of a user at once (``scrapewarden users logout``, or
the Users page): one setting per user holds the time, and sessions issued before it are void.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer

from ..state.base import StateStore

COOKIE = "sw_dash"
KEY_SETTING = "dashboard.session_key"
REVOKED_MARK = "dashboard.session.revoked:"
ENDED_SETTING = "dashboard.sessions_ended:"
"""Followed by a user name: the time before which that user's sessions are void."""
DEFAULT_MAX_AGE = 8 * 3600


@dataclass(frozen=True, slots=True)
class Session:
    sid: str
    user: str | None
    issued: float
    password_changed: float | None


def stored_key(store: StateStore) -> bytes:
    """The signing key kept in the store (made on first use), shared by every dashboard process
    on that store so a load balancer may send a browser to any of them."""
    key = store.get_setting(KEY_SETTING)
    if key is None:
        store.set_setting(KEY_SETTING, secrets.token_hex(32))
        store.flush()
        key = store.get_setting(KEY_SETTING)
    if key is None:  # pragma: no cover - a store that forgets what it was just told
        raise RuntimeError("the state store did not keep the dashboard session key")
    return bytes.fromhex(key)


class SessionCodec:
    def __init__(self, key: bytes, *, max_age: int = DEFAULT_MAX_AGE) -> None:
        self._key = key
        self.max_age = max_age
        self._serializer = URLSafeTimedSerializer(key, salt="scrapewarden.dashboard.session")

    def new(self, user: str | None = None, *, now: float, password_changed: float | None = None) -> Session:
        return Session(secrets.token_urlsafe(18), user, now, password_changed)

    def dump(self, session: Session) -> str:
        return self._serializer.dumps(
            {"s": session.sid, "u": session.user, "i": session.issued, "p": session.password_changed}
        )

    def load(self, cookie: str | None, *, now: float) -> Session | None:
        """The session in ``cookie``, or None if it is missing, forged or too old."""
        if not cookie or len(cookie) > 4096:
            return None
        try:
            data: Any = self._serializer.loads(cookie, max_age=self.max_age)
        except BadSignature:  # includes SignatureExpired
            return None
        if not isinstance(data, dict):
            return None
        sid, user, issued, changed = data.get("s"), data.get("u"), data.get("i"), data.get("p")
        if not isinstance(sid, str) or not isinstance(issued, int | float):
            return None
        if issued > now + 60 or now - issued > self.max_age:
            return None  # also checked against our clock, not only itsdangerous's
        if user is not None and not (isinstance(user, str) and isinstance(changed, int | float)):
            return None
        return Session(sid, user, float(issued), None if changed is None else float(changed))

    def csrf_token(self, session: Session) -> str:
        return hmac.new(self._key, b"csrf\x00" + session.sid.encode(), hashlib.sha256).hexdigest()

    def csrf_ok(self, session: Session | None, token: str | None) -> bool:
        if session is None or not token:
            return False
        return hmac.compare_digest(self.csrf_token(session), token)


# -- revocation, shared through the store ---------------------------------------------------------


def revoke(store: StateStore, session: Session, *, max_age: int, now: float) -> None:
    """Void ``session`` on every process sharing ``store``, until it would have expired."""
    until = max(session.issued + max_age, now + 1)
    store.spend_once(REVOKED_MARK + session.sid, until, now)
    store.flush()


def end_all(store: StateStore, user: str, *, now: float) -> None:
    """Void every session of ``user`` issued until ``now`` (later logins are not touched)."""
    store.set_setting(ENDED_SETTING + user, repr(float(now)))
    store.flush()


def ended_at(store: StateStore, user: str) -> float | None:
    raw = store.get_setting(ENDED_SETTING + user)
    try:
        return float(raw) if raw else None
    except ValueError:
        return None


def revoked(store: StateStore, session: Session, *, now: float) -> bool:
    """True if ``session`` was logged out, or all its user's sessions were ended after it began."""
    if session.user is not None:
        ended = ended_at(store, session.user)
        if ended is not None and session.issued <= ended:
            return True
    return store.is_spent(REVOKED_MARK + session.sid, now)
