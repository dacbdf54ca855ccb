"""How bans and events are written into Redis fields, and read back.

Times are written as Python's ``repr`` of the float, which reads back to the same float, and
are never turned into numbers inside Lua on the way (Lua would keep 14 digits only).
"""

from __future__ import annotations

import json
from typing import cast

from ..base import Allow, Ban, BanKind, Event


class Keys:
    """The key layout. Every key one script touches shares one hash tag (Redis Cluster)."""

    def __init__(self, prefix: str) -> None:
        bans = "{" + prefix + ":bans}"
        events = "{" + prefix + ":events}"
        self.ban_prefix = bans + ":ban:"
        """+ ``kind:value``: a hash per ban."""
        self.expiry = bans + ":expiry"
        """Sorted set of ``kind:value`` by expiry (``+inf`` for bans without one)."""
        self.bans_version = bans + ":version"
        """A token every change to the bans replaces: readers holding it need not fetch again."""
        self.history_prefix = bans + ":history:"
        """+ ``kind:value``: sorted set of the creation times of every ban the actor had."""
        self.stream = events + ":stream"
        self.event_seq = events + ":seq"
        self.batch_prefix = events + ":batch:"
        self.settings = "{" + prefix + ":settings}"
        audit = "{" + prefix + ":audit}"
        self.audit_log = audit + ":log"
        """A list of the audit chain's entries (JSON), oldest first."""
        self.audit_head = audit + ":head"
        """A hash: seq and hash of the chain's last entry (append_audit.lua moves it)."""
        self.audit_mark_prefix = audit + ":mark:"
        """+ a token: marks an appended record for an hour (a retried append is not logged twice)."""
        incidents = "{" + prefix + ":incidents}"
        self.incident_docs = incidents + ":docs"
        """A hash: incident id -> the incident as JSON."""
        self.incident_versions = incidents + ":versions"
        """A hash: incident id -> its stored version (save_incident.lua compares it)."""
        users = "{" + prefix + ":users}"
        self.users = users + ":users"
        """Hash: user name -> the user as JSON (dashboard logins; argon2id hashes only)."""
        self.tokens = users + ":tokens"
        """Hash: SHA-256 digest of an API token -> the token's record as JSON."""
        self.allows = "{" + prefix + ":allows}:all"
        """Hash: ``kind:value`` -> an operator allow as JSON (one key: one Cluster slot)."""
        self.spent_prefix = prefix + ":spent:"
        """+ the caller's key; no hash tag, so marks spread over a Cluster's nodes."""

    def ban(self, kind: str, value: str) -> str:
        return self.ban_prefix + member(kind, value)

    def history(self, kind: str, value: str) -> str:
        return self.history_prefix + member(kind, value)


def text(value: object) -> str:
    """``value`` as text Redis can take: lone surrogates (undecodable request bytes, which the
    doors keep with surrogateescape) become '?'. The client's ``encoding_errors`` does this too,
    but not when redis-py packs commands with hiredis (an optional speed-up users may have)."""
    s = str(value)
    if s.isascii():
        return s
    return s.encode("utf-8", "replace").decode("utf-8")


def member(kind: str, value: str) -> str:
    return text(f"{kind}:{value}")


def ban_args(ban: Ban) -> list[str]:
    """ARGV for add_ban.lua (after the member)."""
    return [
        repr(float(ban.created)),
        "" if ban.expires is None else repr(float(ban.expires)),
        text(ban.reason),
        text(ban.source),
        str(int(ban.offences)),
        ban.kind,
        text(ban.value),
    ]


def ban_from_hash(fields: dict[str, str]) -> Ban:
    expires = fields.get("expires", "")
    return Ban(
        kind=cast(BanKind, fields["kind"]),
        value=fields["value"],
        created=float(fields["created"]),
        expires=float(expires) if expires else None,
        reason=fields.get("reason", ""),
        offences=int(fields.get("offences", "1")),
        source=fields.get("source", "operator"),
    )


def allow_json(allow: Allow) -> str:
    """An allow as the JSON stored in the allows hash. Times as floats: JSON numbers read back
    to the same float in Python, and prune_allows.lua compares them as doubles."""
    return json.dumps(
        {
            "kind": allow.kind,
            "value": text(allow.value),
            "created": float(allow.created),
            "expires": None if allow.expires is None else float(allow.expires),
            "reason": text(allow.reason),
            "by": text(allow.by),
        },
        ensure_ascii=False,
    )


def allow_from_json(raw: str) -> Allow:
    d = json.loads(raw)
    expires = d.get("expires")
    return Allow(
        kind=cast(BanKind, d["kind"]),
        value=str(d["value"]),
        created=float(d["created"]),
        expires=None if expires is None else float(expires),
        reason=str(d.get("reason", "")),
        by=str(d.get("by", "operator")),
    )


def pairs_to_dict(flat: list[str]) -> dict[str, str]:
    return dict(zip(flat[::2], flat[1::2], strict=True))


_OPTIONAL = ("account", "session", "record")


def event_fields(event: Event) -> list[str]:
    """Field/value pairs for one stream entry; ``ts`` first (prune_events.lua looks for it)."""
    fields = [
        "ts",
        repr(float(event.ts)),
        "action",
        str(event.action),
        "score",
        repr(float(event.score)),
        "enforced",
        "1" if event.enforced else "0",
        "ip",
        text(event.ip),
        "method",
        text(event.method),
        "path",
        text(event.path),
        "ua",
        text(event.user_agent),
        "fp",
        text(event.fingerprint),
        "reasons",
        text(json.dumps([str(r) for r in event.reasons], ensure_ascii=False)),
    ]
    for name in _OPTIONAL:
        value = getattr(event, name)
        if value is not None:  # absent means None; "" stays ""
            fields += [name, text(value)]
    return fields


def event_id(stream_id: str) -> int:
    """Stream id ``N-0`` -> event id N (see record_events.lua)."""
    return int(stream_id.partition("-")[0])


def event_from_entry(stream_id: str, fields: dict[str, str]) -> Event:
    return Event(
        ts=float(fields["ts"]),
        action=fields.get("action", ""),
        score=float(fields.get("score", "0")),
        enforced=fields.get("enforced") == "1",
        ip=fields.get("ip", ""),
        method=fields.get("method", ""),
        path=fields.get("path", ""),
        user_agent=fields.get("ua", ""),
        account=fields.get("account"),
        session=fields.get("session"),
        fingerprint=fields.get("fp", ""),
        reasons=list(json.loads(fields.get("reasons", "[]"))),
        record=fields.get("record"),
        id=event_id(stream_id),
    )
