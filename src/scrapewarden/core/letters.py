"""Tracking the letters an incident calls for: sent when, answered when, overdue since when (R7).

A letter is drafted (see :mod:`scrapewarden.incidents.drafts`), reviewed, sent by a person, and
some letters expect something back: a scraper's operator is asked to confirm that the data is
deleted, or to undertake to stop. This module keeps those facts as small records that serialise
to JSON (for the incident store) and answers one question from them: given ``now``, what is
overdue and should be brought up again?

Two things can be overdue: a letter not sent by the time it had to go out (the report to a
regulator, say), and a letter sent whose answer has not arrived by its reply date. A reminder for
the same letter comes up again only once ``remind_every`` has passed since the last one, so a
daily job does not nag every minute.

Pure: no I/O, no clock; ``now`` is passed in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

LetterKind = Literal["notice", "regulator", "cease_and_desist", "deletion_demand"]
LETTER_KINDS: tuple[LetterKind, ...] = ("notice", "regulator", "cease_and_desist", "deletion_demand")
EXPECTS_REPLY: frozenset[str] = frozenset({"cease_and_desist", "deletion_demand"})
"""Kinds whose recipient is asked to answer (an undertaking, a confirmation of deletion)."""

DAY = 86400.0


class LetterError(ValueError):
    """A step that does not fit the letter's state (confirming a letter never sent...)."""


@dataclass(frozen=True, slots=True)
class Letter:
    id: str
    incident_id: str
    kind: LetterKind
    recipient: str
    """Who it goes to, as the officer would write it on the envelope (a name, an address)."""
    created_at: float
    send_by: float | None = None
    """When it must have gone out (a regulator's deadline); None: no deadline."""
    sent_at: float | None = None
    sent_by: str = ""
    reply_due_at: float | None = None
    """When the recipient's answer is due (set when sent, for kinds that expect one)."""
    replied_at: float | None = None
    reply_note: str = ""
    """What came back: "written confirmation that all copies were deleted", a reference..."""
    reminded_at: float | None = None
    """The last time a reminder for this letter was raised."""

    @property
    def expects_reply(self) -> bool:
        return self.kind in EXPECTS_REPLY

    @property
    def state(self) -> str:
        if self.sent_at is None:
            return "draft"
        if self.replied_at is not None:
            return "confirmed" if self.kind == "deletion_demand" else "answered"
        return "awaiting reply" if self.expects_reply else "sent"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "incident_id": self.incident_id,
            "kind": self.kind,
            "recipient": self.recipient,
            "created_at": self.created_at,
            "send_by": self.send_by,
            "sent_at": self.sent_at,
            "sent_by": self.sent_by,
            "reply_due_at": self.reply_due_at,
            "replied_at": self.replied_at,
            "reply_note": self.reply_note,
            "reminded_at": self.reminded_at,
            "state": self.state,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Letter:
        kind = str(data["kind"])
        if kind not in LETTER_KINDS:
            raise LetterError(f"unknown letter kind {kind!r}")
        return cls(
            id=str(data["id"]),
            incident_id=str(data["incident_id"]),
            kind=kind,  # checked against LETTER_KINDS above
            recipient=str(data.get("recipient", "")),
            created_at=float(data["created_at"]),
            send_by=_opt_float(data.get("send_by")),
            sent_at=_opt_float(data.get("sent_at")),
            sent_by=str(data.get("sent_by", "")),
            reply_due_at=_opt_float(data.get("reply_due_at")),
            replied_at=_opt_float(data.get("replied_at")),
            reply_note=str(data.get("reply_note", "")),
            reminded_at=_opt_float(data.get("reminded_at")),
        )


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


def mark_sent(letter: Letter, at: float, by: str, *, reply_days: float | None = None) -> Letter:
    """The letter went out at ``at``; a kind that expects an answer gets its reply date."""
    if letter.sent_at is not None:
        raise LetterError(f"letter {letter.id} was already sent")
    reply_due = None
    if letter.expects_reply:
        if reply_days is None or reply_days <= 0:
            raise LetterError(f"a {letter.kind} letter needs the number of days the recipient has to answer")
        reply_due = at + reply_days * DAY
    return replace(letter, sent_at=at, sent_by=by, reply_due_at=reply_due)


def mark_replied(letter: Letter, at: float, note: str) -> Letter:
    """The answer (a confirmation of deletion, an undertaking) arrived at ``at``."""
    if letter.sent_at is None:
        raise LetterError(f"letter {letter.id} was never sent")
    if not letter.expects_reply:
        raise LetterError(f"a {letter.kind} letter expects no reply")
    if letter.replied_at is not None:
        raise LetterError(f"letter {letter.id} already has its reply")
    return replace(letter, replied_at=at, reply_note=note)


def mark_reminded(letter: Letter, at: float) -> Letter:
    return replace(letter, reminded_at=at)


@dataclass(frozen=True, slots=True)
class Reminder:
    letter_id: str
    incident_id: str
    kind: LetterKind
    recipient: str
    reason: Literal["not sent", "no reply"]
    due_at: float
    overdue_seconds: float

    @property
    def message(self) -> str:
        days = self.overdue_seconds / DAY
        late = f"{days:.1f} days" if days >= 1 else f"{self.overdue_seconds / 3600:.1f} hours"
        label = self.kind.replace("_", "-")
        if self.reason == "not sent":
            return f"{label} letter to {self.recipient} is {late} past the date it had to be sent"
        what = "confirmation of deletion" if self.kind == "deletion_demand" else "answer"
        return f"no {what} from {self.recipient} to the {label} letter, {late} after it was due"

    def to_dict(self) -> dict[str, Any]:
        return {
            "letter_id": self.letter_id,
            "incident_id": self.incident_id,
            "kind": self.kind,
            "recipient": self.recipient,
            "reason": self.reason,
            "due_at": self.due_at,
            "overdue_seconds": self.overdue_seconds,
            "message": self.message,
        }


def overdue(letters: Iterable[Letter], now: float, *, remind_every: float = 7 * DAY) -> list[Reminder]:
    """Letters overdue at ``now`` whose last reminder (if any) is at least ``remind_every`` old,
    most overdue first. Call :func:`mark_reminded` on the ones actually raised."""
    out: list[Reminder] = []
    for letter in letters:
        due, reason = _due(letter)
        if due is None or now <= due:
            continue
        if letter.reminded_at is not None and now - letter.reminded_at < remind_every:
            continue
        out.append(
            Reminder(letter.id, letter.incident_id, letter.kind, letter.recipient, reason, due, now - due)
        )
    out.sort(key=lambda r: (-r.overdue_seconds, r.letter_id))
    return out


def _due(letter: Letter) -> tuple[float | None, Literal["not sent", "no reply"]]:
    if letter.sent_at is None:
        return letter.send_by, "not sent"
    if letter.expects_reply and letter.replied_at is None:
        return letter.reply_due_at, "no reply"
    return None, "no reply"
