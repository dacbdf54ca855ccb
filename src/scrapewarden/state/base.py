"""The state interface: bans, events and settings that must outlive one request.

Hot-path counters (rates, distinct-record budgets) are *not* here: they live in the engine's
counter store (:mod:`scrapewarden.core.counters`). This store holds what an operator acts on
and what must survive a restart. Every backend passes ``tests/state/test_conformance.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

from ..core.audit import AuditEntry, AuditRecord
from ..core.incidents import Incident

BanKind = Literal["ip", "network", "account", "fingerprint", "session"]
BAN_KINDS: tuple[BanKind, ...] = ("ip", "network", "account", "fingerprint", "session")


@dataclass(slots=True)
class Ban:
    kind: BanKind
    value: str
    """An IP, a CIDR (kind ``network``), an account id, a fingerprint or a session id."""
    created: float
    expires: float | None
    """Epoch seconds; None: until removed."""
    reason: str = ""
    offences: int = 1
    """How many times this actor has been banned (drives escalation)."""
    source: str = "operator"
    """``operator`` (CLI/dashboard) or ``auto`` (the engine)."""

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.value}"

    def active(self, now: float) -> bool:
        return self.expires is None or self.expires > now


@dataclass(slots=True)
class Allow:
    """An operator allow: while in force, requests from this actor are allowed whatever bans and
    detectors say, and still counted (see :mod:`scrapewarden.core.allows`)."""

    kind: BanKind
    value: str
    """The same kinds and canonical values as :class:`Ban`."""
    created: float
    expires: float | None
    """Epoch seconds; None: until lifted."""
    reason: str = ""
    by: str = "operator"
    """Who allowed it (the dashboard user or CLI operator)."""

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.value}"

    def active(self, now: float) -> bool:
        return self.expires is None or self.expires > now


@dataclass(slots=True)
class Event:
    """A non-allow decision (or an observe-mode would-be action), with its reasons."""

    ts: float
    action: str
    score: float
    enforced: bool
    ip: str
    method: str
    path: str
    user_agent: str = ""
    account: str | None = None
    session: str | None = None
    fingerprint: str = ""
    reasons: list[str] = field(default_factory=list)
    record: str | None = None
    """``kind:id`` of the protected record asked for, if any."""
    id: int | None = None
    """Assigned by the store."""


Role = Literal["admin", "analyst", "viewer"]
ROLES: tuple[Role, ...] = ("admin", "analyst", "viewer")
"""Dashboard roles, most powerful first: admin (users, policy), analyst (bans, incidents),
viewer (read-only)."""


@dataclass(slots=True)
class User:
    """A dashboard user. Only a password *hash* (argon2id, PHC string) is ever stored."""

    name: str
    role: Role
    password_hash: str
    created: float
    password_changed: float
    """Sessions issued before this time are void, so a password change logs everyone out."""


@dataclass(slots=True)
class ApiToken:
    """A bearer token for the dashboard's JSON API. Only its SHA-256 digest is stored."""

    digest: str
    """Hex SHA-256 of the token; the token itself is shown once, when it is made."""
    user: str
    created: float
    expires: float | None
    label: str = ""

    def active(self, now: float) -> bool:
        return self.expires is None or self.expires > now


class StateStore(Protocol):
    """Persistent state. Methods are synchronous and fast; backends batch writes internally."""

    url: str

    def add_ban(self, ban: Ban) -> Ban:
        """Insert or replace the ban for (kind, value); returns what was stored."""

    def remove_ban(self, kind: BanKind, value: str) -> bool:
        """True if a ban was removed."""

    def get_ban(self, kind: BanKind, value: str) -> Ban | None:
        """The ban for (kind, value), active or expired, or None."""

    def list_bans(self, now: float | None = None) -> list[Ban]:
        """All bans; with ``now``, only those still active at that time."""

    def prior_offences(self, kind: BanKind, value: str) -> int:
        """How many bans this actor has had, including expired and removed ones."""

    def prune_bans(self, before: float) -> int:
        """Delete bans that expired before ``before``; returns how many. The ban history (and so
        ``prior_offences``) is kept: escalation must remember earlier offences."""

    # -- operator allows (see scrapewarden.core.allows) --------------------------------------

    def add_allow(self, allow: Allow) -> Allow:
        """Insert or replace the allow for (kind, value); returns what was stored."""

    def remove_allow(self, kind: BanKind, value: str) -> bool:
        """True if an allow was removed."""

    def get_allow(self, kind: BanKind, value: str) -> Allow | None:
        """The allow for (kind, value), in force or expired, or None."""

    def list_allows(self, now: float | None = None) -> list[Allow]:
        """All allows, oldest first; with ``now``, only those still in force at that time."""

    def prune_allows(self, before: float) -> int:
        """Delete allows that expired before ``before``; returns how many."""

    def record_event(self, event: Event) -> None:
        """Queue an event; visible to ``events()`` after ``flush()``."""

    def events(self, since_id: int = 0, limit: int = 100) -> list[Event]:
        """Events with id > since_id, oldest first."""

    def prune_events(self, before: float) -> int:
        """Delete events older than ``before``; returns how many."""

    def spend_once(self, key: str, until: float, now: float) -> bool:
        """Mark ``key`` as used until ``until``; True the first time, False while an earlier
        mark is still alive (``until > now``). What makes a challenge answer single-use across
        every instance sharing the store. Expired marks may be forgotten at any time."""

    def is_spent(self, key: str, now: float) -> bool:
        """True while a mark ``spend_once`` put on ``key`` is alive (its ``until > now``); reads
        only. What makes a revoked dashboard session stay revoked on every process."""

    def get_setting(self, name: str) -> str | None: ...

    # -- dashboard users and API tokens --------------------------------------------------------

    def put_user(self, user: User) -> None:
        """Insert or replace the user named ``user.name``."""

    def get_user(self, name: str) -> User | None: ...

    def list_users(self) -> list[User]:
        """Every user, by name."""

    def remove_user(self, name: str) -> bool:
        """True if the user existed. Their API tokens go with them."""

    def add_token(self, token: ApiToken) -> None:
        """Insert or replace the token with ``token.digest``."""

    def get_token(self, digest: str) -> ApiToken | None:
        """The token with this digest, expired or not, or None."""

    def list_tokens(self, user: str | None = None) -> list[ApiToken]:
        """Every token (of ``user`` if given), oldest first."""

    def remove_token(self, digest: str) -> bool: ...

    def set_setting(self, name: str, value: str) -> None: ...

    # -- the audit log (see scrapewarden.core.audit and docs/incidents.md) ----------------------

    def append_audit(self, record: AuditRecord) -> AuditEntry | None:
        """Chain ``record`` after the current head, atomically (two processes appending at once
        both land, one after the other). Returns the stored entry; None only from a store that
        queued it to chain later (Redis while unreachable), visible after ``flush()``. Never
        drops an entry silently: what cannot be stored raises."""

    def audit_entries(self, after_seq: int = 0, limit: int = 1000) -> list[AuditEntry]:
        """Stored entries with seq > after_seq, in stored order (which verification checks)."""

    def audit_head(self) -> tuple[int, str] | None:
        """(seq, hash) of the last entry, as noted apart from the entries at each append; None
        before the first. Verification checks the chain ends there (entries cut off the end)."""

    # -- incidents (see scrapewarden.core.incidents) ---------------------------------------------

    def save_incident(self, incident: Incident) -> bool:
        """Store ``incident`` if the stored copy is still at ``incident.version`` (0: there is
        none yet), and set ``incident.version`` to the new stored version. False when another
        writer got there first: reload, apply the change again, retry."""

    def get_incident(self, incident_id: str) -> Incident | None: ...

    def list_incidents(self) -> list[Incident]:
        """Every incident, oldest first."""

    def flush(self) -> None:
        """Make queued writes durable and visible."""

    def close(self) -> None: ...
