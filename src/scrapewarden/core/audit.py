"""The audit log's chain: how an entry is hashed, linked to the one before, and checked.

Every action a person or the system takes (a ban, an unban, a policy change, an incident step)
becomes one :class:`AuditEntry`. Each entry carries the hash of the entry before it, and its own
hash is SHA-256 over a canonical encoding of everything in it, the previous hash included. So
changing, removing or reordering any stored entry breaks the chain at that entry, and
:func:`verify` names it.

What the chain cannot show by itself: someone able to write the store may rebuild the whole
chain from the first altered entry on, or cut entries off its end. The defence is an anchor
kept elsewhere: the head hash (printed by ``scrapewarden audit verify``) written down, mailed or
stored in another system, and checked later with ``--expect-head``: a rebuilt or shortened chain
no longer ends in (or passes through) that hash.

Pure: no clock, no storage. Stores call :func:`chain` to link a new entry to their head inside
one atomic step, and give :func:`verify` their entries in sequence order.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

GENESIS = "0" * 64
"""The ``prev_hash`` of the first entry."""
FORMAT = "scrapewarden-audit-1"
"""Part of every hashed encoding, so a later format cannot be confused with this one."""
SYSTEM = "system"
"""The actor name for what scrapewarden does by itself (automatic bans, incidents it opens)."""


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """What happened, before it is placed in the chain."""

    ts: float
    actor: str
    """Who: a person's user name, or :data:`SYSTEM`."""
    action: str
    """What, as ``noun.verb``: ``ban.add``, ``ban.remove``, ``policy.write``, ``incident.advance``..."""
    target: str
    """What it was done to: ``ip:203.0.113.7``, an incident id, a policy file."""
    details: Mapping[str, Any] = field(default_factory=dict)
    """Anything else worth keeping, JSON-encodable."""


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One entry of the chain as stored."""

    seq: int
    ts: float
    actor: str
    action: str
    target: str
    details_json: str
    """The details in their canonical JSON text (ASCII only): stored and hashed as is."""
    prev_hash: str
    hash: str

    @property
    def details(self) -> dict[str, Any]:
        loaded = json.loads(self.details_json)
        return loaded if isinstance(loaded, dict) else {"value": loaded}

    def as_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "ts": self.ts,
            "actor": self.actor,
            "action": self.action,
            "target": self.target,
            "details": self.details,
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }

    def to_json(self) -> str:
        """One line of JSON holding every stored field (what the Redis store keeps)."""
        return json.dumps(
            [
                self.seq,
                self.ts,
                self.actor,
                self.action,
                self.target,
                self.details_json,
                self.prev_hash,
                self.hash,
            ],
            ensure_ascii=True,
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str) -> AuditEntry:
        seq, ts, actor, action, target, details, prev, digest = json.loads(text)
        return cls(
            int(seq), float(ts), str(actor), str(action), str(target), str(details), str(prev), str(digest)
        )


def clean_text(value: object) -> str:
    """Text every store keeps exactly: lone surrogates (from undecodable input) become '?'.
    The hash is taken over the cleaned text, so what is stored is what was hashed."""
    text = value if isinstance(value, str) else str(value)
    if text.isascii():
        return text
    return text.encode("utf-8", "replace").decode("utf-8")


def canonical_details(details: Mapping[str, Any]) -> str:
    """Details as canonical JSON: sorted keys, no spaces, ASCII only (escapes for the rest),
    so every store keeps the exact text and no Unicode normalisation can change it. Raises
    ValueError for what JSON cannot hold (NaN, sets, objects)."""
    try:
        return json.dumps(
            dict(details), sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
        )
    except TypeError as exc:
        raise ValueError(f"audit details must be JSON: {exc}") from exc


def entry_hash(
    seq: int, ts: float, actor: str, action: str, target: str, details_json: str, prev_hash: str
) -> str:
    """SHA-256 (hex) of the canonical encoding of one entry: a JSON array of the format name and
    every field in a fixed order, floats as Python's shortest round-trip text."""
    encoded = json.dumps(
        [FORMAT, int(seq), float(ts), actor, action, target, details_json, prev_hash],
        ensure_ascii=True,
        separators=(",", ":"),
        allow_nan=False,
    )
    return hashlib.sha256(encoded.encode("ascii")).hexdigest()


def chain(record: AuditRecord, prev: AuditEntry | None) -> AuditEntry:
    """``record`` placed after ``prev`` (None: the first entry)."""
    return chain_after(record, prev.seq if prev else 0, prev.hash if prev else GENESIS)


def chain_after(record: AuditRecord, prev_seq: int, prev_hash: str) -> AuditEntry:
    """``record`` placed after the entry ``prev_seq`` whose hash is ``prev_hash``."""
    seq = prev_seq + 1
    actor, action, target = clean_text(record.actor), clean_text(record.action), clean_text(record.target)
    details = canonical_details(record.details)
    ts = float(record.ts)
    digest = entry_hash(seq, ts, actor, action, target, details, prev_hash)
    return AuditEntry(seq, ts, actor, action, target, details, prev_hash, digest)


@dataclass(frozen=True, slots=True)
class Verification:
    """What :func:`verify` found."""

    verified: int
    """Entries checked and found intact, from the first up to the first broken one."""
    head: str
    """Hash of the last intact entry (:data:`GENESIS` for an empty log)."""
    head_seq: int
    broken_seq: int | None = None
    """Sequence number of the first broken entry (or where one is missing); None if intact."""
    problem: str = ""

    @property
    def ok(self) -> bool:
        return self.broken_seq is None


def verify(
    entries: Iterable[AuditEntry],
    *,
    recorded_head: tuple[int, str] | None = None,
    expect_head: str | None = None,
) -> Verification:
    """Check a chain, entries in stored (sequence) order.

    Finds the first entry whose content does not match its hash (altered), whose sequence number
    is not the next one (removed, inserted or reordered), or whose ``prev_hash`` is not the hash
    of the entry before it. ``recorded_head``: the (seq, hash) the store noted separately at the
    last append; the chain must end there (an entry cut off the end). ``expect_head``: a hash
    written down earlier (an anchor); it must be in the chain (a rewritten chain loses it).
    """
    prev_seq, prev_hash, count = 0, GENESIS, 0
    anchor_seen = expect_head is None or expect_head == GENESIS
    head_seq, head_hash = recorded_head if recorded_head is not None else (0, GENESIS)

    def broken(seq: int, problem: str) -> Verification:
        return Verification(count, prev_hash, prev_seq, seq, problem)

    for entry in entries:
        if entry.seq != prev_seq + 1:
            if entry.seq <= prev_seq:
                return broken(entry.seq, f"entry {entry.seq} is out of order (after entry {prev_seq})")
            return broken(prev_seq + 1, f"entry {prev_seq + 1} is missing (next stored is {entry.seq})")
        if entry.prev_hash != prev_hash:
            return broken(
                entry.seq, f"entry {entry.seq} does not link to entry {prev_seq} (prev_hash differs)"
            )
        try:
            expected = entry_hash(
                entry.seq,
                entry.ts,
                entry.actor,
                entry.action,
                entry.target,
                entry.details_json,
                entry.prev_hash,
            )
        except ValueError:
            expected = ""
        if entry.hash != expected:
            return broken(entry.seq, f"entry {entry.seq} was altered (its content does not match its hash)")
        if entry.seq == head_seq and entry.hash != head_hash:
            return broken(entry.seq, f"entry {entry.seq} differs from the head the store recorded")
        prev_seq, prev_hash, count = entry.seq, entry.hash, count + 1
        if entry.hash == expect_head:
            anchor_seen = True
    if head_seq > prev_seq:
        # The store noted a later head than the chain holds: entries were cut off its end.
        return broken(prev_seq + 1, f"entries {prev_seq + 1} to {head_seq} are missing from the end")
    if not anchor_seen:
        return broken(
            prev_seq + 1,
            f"the expected head {expect_head} is not in the chain (rewritten or cut short)",
        )
    return Verification(count, prev_hash, prev_seq)
