"""The letters' tracking as people read it: the CLI's ``incidents letters|letter|overdue`` and the
dashboard's Incidents page show and change it through these, so both say the same thing.

The records themselves and the rules (what a step may follow, when something is overdue) are
pure and live in :mod:`scrapewarden.core.letters` and :mod:`scrapewarden.core.follow_up`; this
module only names the letters as people type them, works out the reply period a step needs from
the policy, and lays each letter out with its overdue flag.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from ..core.follow_up import LetterStep
from ..core.incidents import Incident
from ..core.letters import Letter, LetterKind, Reminder, overdue
from ..core.policy import NoticePolicy

LETTER_NAMES: dict[str, LetterKind] = {
    "notice": "notice",
    "regulator": "regulator",
    "cease-and-desist": "cease_and_desist",
    "deletion-demand": "deletion_demand",
}
"""How a letter kind is typed (``--kind cease-and-desist``, a form field) -> its kind."""

STEPS: tuple[LetterStep, ...] = ("sent", "replied", "confirmed-deletion")


def letter_name(kind: str) -> str:
    """``cease_and_desist`` -> ``cease-and-desist``."""
    return kind.replace("_", "-")


def reply_days(notices: NoticePolicy, kind: LetterKind) -> float | None:
    """Days the recipient of a letter of ``kind`` is given to answer once it is sent (the
    policy's ``response_days`` and ``deletion_days``); None for kinds that expect no answer."""
    days = {"cease_and_desist": notices.response_days, "deletion_demand": notices.deletion_days}
    return days.get(kind)


def letter_rows(letters: Sequence[Letter], now: float) -> list[dict[str, Any]]:
    """Each letter as a dict (``Letter.to_dict``) with ``overdue``: the reminder's dict when it
    is overdue at ``now`` (not sent by ``send_by``, or unanswered by ``reply_due_at``), else None."""
    late = {r.letter_id: r for r in overdue(letters, now, remind_every=0.0)}
    rows = []
    for letter in letters:
        row = letter.to_dict()
        reminder = late.get(letter.id)
        row["overdue"] = reminder.to_dict() if reminder is not None else None
        rows.append(row)
    return rows


def overdue_letters(incidents: Iterable[Incident], now: float) -> list[Reminder]:
    """Every letter overdue at ``now`` across ``incidents`` not closed, most overdue first."""
    reminders = [r for i in incidents if i.is_open for r in overdue(i.letters, now, remind_every=0.0)]
    reminders.sort(key=lambda r: (-r.overdue_seconds, r.letter_id))
    return reminders
