"""In-process state: fast, thread-safe, gone when the process exits.

Good for tests, demos and single-process deployments that accept losing bans on restart.
Events live in a bounded deque so a flood of blocked requests cannot exhaust memory; the
oldest events fall off first.
"""

from __future__ import annotations

import bisect
import json
import threading
from collections import deque

from ..core.audit import AuditEntry, AuditRecord, chain
from ..core.incidents import Incident
from ._copy import check_kind, check_user, copy_allow, copy_ban, copy_event, copy_token, copy_user
from .base import Allow, ApiToken, Ban, BanKind, Event, User
from .errors import StateClosedError

DEFAULT_MAX_EVENTS = 100_000
SPENT_SWEEP_AT = 100_000
"""Single-use marks held before expired ones are swept out."""


class MemoryStore:
    """A :class:`~scrapewarden.state.base.StateStore` held in this process's memory."""

    def __init__(self, *, max_events: int = DEFAULT_MAX_EVENTS, url: str = "memory://") -> None:
        if max_events <= 0:
            raise ValueError("max_events must be positive")
        self.url = url
        self.max_events = max_events
        self._lock = threading.Lock()
        self._bans: dict[tuple[str, str], Ban] = {}
        # (kind, value) -> creation times of every ban ever issued. A ban is identified by its
        # creation time, so re-storing the same ban (an edit) is not a new offence.
        self._history: dict[tuple[str, str], set[float]] = {}
        self._allows: dict[tuple[str, str], Allow] = {}
        self._events: deque[Event] = deque(maxlen=max_events)
        self._next_id = 1
        self._settings: dict[str, str] = {}
        self._spent: dict[str, float] = {}
        self._audit: list[AuditEntry] = []
        self._audit_head: tuple[int, str] | None = None
        self._incidents: dict[str, str] = {}  # id -> JSON, so callers never share objects
        self._users: dict[str, User] = {}
        self._tokens: dict[str, ApiToken] = {}
        self._closed = False

    # -- bans -------------------------------------------------------------------------------

    def add_ban(self, ban: Ban) -> Ban:
        check_kind(ban.kind)
        with self._lock:
            self._check_open()
            key = (ban.kind, ban.value)
            history = self._history.setdefault(key, set())
            history.add(ban.created)
            stored = copy_ban(ban)
            stored.offences = max(ban.offences, len(history))
            self._bans[key] = stored
            return copy_ban(stored)

    def remove_ban(self, kind: BanKind, value: str) -> bool:
        with self._lock:
            self._check_open()
            return self._bans.pop((kind, value), None) is not None

    def get_ban(self, kind: BanKind, value: str) -> Ban | None:
        with self._lock:
            self._check_open()
            ban = self._bans.get((kind, value))
            return copy_ban(ban) if ban is not None else None

    def list_bans(self, now: float | None = None) -> list[Ban]:
        with self._lock:
            self._check_open()
            bans = [copy_ban(b) for b in self._bans.values() if now is None or b.active(now)]
        bans.sort(key=lambda b: (b.created, b.kind, b.value))
        return bans

    def prior_offences(self, kind: BanKind, value: str) -> int:
        with self._lock:
            self._check_open()
            return len(self._history.get((kind, value), ()))

    def prune_bans(self, before: float) -> int:
        with self._lock:
            self._check_open()
            gone = [
                key for key, ban in self._bans.items() if ban.expires is not None and ban.expires < before
            ]
            for key in gone:
                del self._bans[key]
            return len(gone)

    # -- operator allows ---------------------------------------------------------------------

    def add_allow(self, allow: Allow) -> Allow:
        check_kind(allow.kind)
        with self._lock:
            self._check_open()
            self._allows[(allow.kind, allow.value)] = copy_allow(allow)
            return copy_allow(allow)

    def remove_allow(self, kind: BanKind, value: str) -> bool:
        with self._lock:
            self._check_open()
            return self._allows.pop((kind, value), None) is not None

    def get_allow(self, kind: BanKind, value: str) -> Allow | None:
        with self._lock:
            self._check_open()
            allow = self._allows.get((kind, value))
            return copy_allow(allow) if allow is not None else None

    def list_allows(self, now: float | None = None) -> list[Allow]:
        with self._lock:
            self._check_open()
            allows = [copy_allow(a) for a in self._allows.values() if now is None or a.active(now)]
        allows.sort(key=lambda a: (a.created, a.kind, a.value))
        return allows

    def prune_allows(self, before: float) -> int:
        with self._lock:
            self._check_open()
            gone = [k for k, a in self._allows.items() if a.expires is not None and a.expires < before]
            for key in gone:
                del self._allows[key]
            return len(gone)

    # -- events -----------------------------------------------------------------------------

    def record_event(self, event: Event) -> None:
        with self._lock:
            if self._closed:
                return  # the request path must never fail because the store shut down first
            self._events.append(copy_event(event, new_id=self._next_id))
            self._next_id += 1

    def events(self, since_id: int = 0, limit: int = 100) -> list[Event]:
        if limit <= 0:
            return []
        with self._lock:
            self._check_open()
            # Ids only grow along the deque, so a binary search finds the starting point.
            start = bisect.bisect_right(self._events, since_id, key=_event_id)
            end = min(len(self._events), start + limit)
            return [copy_event(self._events[i]) for i in range(start, end)]

    def recent_events(self, limit: int = 100) -> list[Event]:
        """The newest ``limit`` events, oldest first (what ``events tail`` shows)."""
        if limit <= 0:
            return []
        with self._lock:
            self._check_open()
            start = max(0, len(self._events) - limit)
            return [copy_event(self._events[i]) for i in range(start, len(self._events))]

    def prune_events(self, before: float) -> int:
        with self._lock:
            self._check_open()
            kept = [e for e in self._events if e.ts >= before]
            removed = len(self._events) - len(kept)
            if removed:
                self._events = deque(kept, maxlen=self.max_events)
            return removed

    # -- single-use marks -------------------------------------------------------------------

    def spend_once(self, key: str, until: float, now: float) -> bool:
        with self._lock:
            self._check_open()
            if len(self._spent) >= SPENT_SWEEP_AT:
                # Marks only matter while alive; sweeping the dead keeps the table bounded.
                self._spent = {k: t for k, t in self._spent.items() if t > now}
            alive = self._spent.get(key)
            if alive is not None and alive > now:
                return False
            self._spent[key] = until
            return True

    def is_spent(self, key: str, now: float) -> bool:
        with self._lock:
            self._check_open()
            alive = self._spent.get(key)
            return alive is not None and alive > now

    # -- settings ---------------------------------------------------------------------------

    def get_setting(self, name: str) -> str | None:
        with self._lock:
            self._check_open()
            return self._settings.get(name)

    def set_setting(self, name: str, value: str) -> None:
        with self._lock:
            self._check_open()
            self._settings[name] = value

    # -- audit log --------------------------------------------------------------------------

    def append_audit(self, record: AuditRecord) -> AuditEntry:
        with self._lock:
            self._check_open()
            entry = chain(record, self._audit[-1] if self._audit else None)
            self._audit.append(entry)
            self._audit_head = (entry.seq, entry.hash)
            return entry

    def audit_entries(self, after_seq: int = 0, limit: int = 1000) -> list[AuditEntry]:
        if limit <= 0:
            return []
        with self._lock:
            self._check_open()
            return [e for e in self._audit if e.seq > after_seq][:limit]

    def audit_head(self) -> tuple[int, str] | None:
        with self._lock:
            self._check_open()
            return self._audit_head

    # -- incidents --------------------------------------------------------------------------

    def save_incident(self, incident: Incident) -> bool:
        data = incident.to_dict()
        data["version"] = incident.version + 1
        text = json.dumps(data)
        with self._lock:
            self._check_open()
            stored = self._incidents.get(incident.id)
            version = json.loads(stored)["version"] if stored is not None else 0
            if version != incident.version:
                return False
            self._incidents[incident.id] = text
        incident.version += 1
        return True

    def get_incident(self, incident_id: str) -> Incident | None:
        with self._lock:
            self._check_open()
            stored = self._incidents.get(incident_id)
        return Incident.from_dict(json.loads(stored)) if stored is not None else None

    def list_incidents(self) -> list[Incident]:
        with self._lock:
            self._check_open()
            stored = list(self._incidents.values())
        found = [Incident.from_dict(json.loads(text)) for text in stored]
        found.sort(key=lambda i: (i.opened_at, i.id))
        return found

    # -- dashboard users and API tokens ----------------------------------------------------

    def put_user(self, user: User) -> None:
        check_user(user)
        with self._lock:
            self._check_open()
            self._users[user.name] = copy_user(user)

    def get_user(self, name: str) -> User | None:
        with self._lock:
            self._check_open()
            user = self._users.get(name)
            return copy_user(user) if user is not None else None

    def list_users(self) -> list[User]:
        with self._lock:
            self._check_open()
            return [copy_user(self._users[name]) for name in sorted(self._users)]

    def remove_user(self, name: str) -> bool:
        with self._lock:
            self._check_open()
            if self._users.pop(name, None) is None:
                return False
            self._tokens = {d: t for d, t in self._tokens.items() if t.user != name}
            return True

    def add_token(self, token: ApiToken) -> None:
        with self._lock:
            self._check_open()
            self._tokens[token.digest] = copy_token(token)

    def get_token(self, digest: str) -> ApiToken | None:
        with self._lock:
            self._check_open()
            token = self._tokens.get(digest)
            return copy_token(token) if token is not None else None

    def list_tokens(self, user: str | None = None) -> list[ApiToken]:
        with self._lock:
            self._check_open()
            tokens = [copy_token(t) for t in self._tokens.values() if user is None or t.user == user]
        tokens.sort(key=lambda t: (t.created, t.digest))
        return tokens

    def remove_token(self, digest: str) -> bool:
        with self._lock:
            self._check_open()
            return self._tokens.pop(digest, None) is not None

    # -- lifecycle --------------------------------------------------------------------------

    def flush(self) -> None:
        """Nothing to do: every write is visible as soon as the call returns."""

    def close(self) -> None:
        with self._lock:
            self._closed = True

    def __enter__(self) -> MemoryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise StateClosedError(f"state store {self.url} is closed")


def _event_id(event: Event) -> int:
    return event.id or 0
