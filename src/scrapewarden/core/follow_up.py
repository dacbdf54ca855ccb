"""Which letters an incident calls for, and each step taken on them (R7, R8).

Once the officer has assessed an incident, :func:`plan_letters` lists the letters the
assessment points to, as tracking records (:class:`~scrapewarden.core.letters.Letter`): one
report per regulator concerned (to be sent by the authority clock's deadline, where the law
names one, so an unsent report shows up as overdue), the notices to the people affected, and the
cease-and-desist letter and deletion demand to the scraper's operator. Letters already tracked
keep their history; only an unsent report's deadline follows a new assessment.

:func:`take_step` records what a person did with one letter (sent, answer received, deletion
confirmed) and returns the audit action for it.

Pure: no I/O, no clock; ``now`` is passed in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Literal

from .breach import Assessment
from .letters import LETTER_KINDS, Letter, LetterError, LetterKind, mark_replied, mark_sent

OPERATOR = "the scraper's operator"
"""Recipient of the operator letters until the officer names one (``--recipient``)."""

LetterStep = Literal["sent", "replied", "confirmed-deletion"]
STEP_ACTIONS: dict[str, str] = {
    "sent": "letter.sent",
    "replied": "letter.replied",
    "confirmed-deletion": "deletion.confirmed",
}


def letter_id(incident_id: str, kind: LetterKind, part: str = "") -> str:
    """``INC-…:regulator:gdpr``: stable, so planning twice never tracks one letter twice."""
    return f"{incident_id}:{kind}" + (f":{part}" if part else "")


def plan_letters(
    incident_id: str, assessment: Assessment, letters: Sequence[Letter], *, now: float
) -> list[Letter]:
    """``letters`` with the ones ``assessment`` calls for added (existing ones kept as they are,
    but an unsent regulator report takes the current deadline)."""
    out = list(letters)
    index = {letter.id: i for i, letter in enumerate(out)}

    def want(letter: Letter) -> None:
        at = index.get(letter.id)
        if at is None:
            index[letter.id] = len(out)
            out.append(letter)
        elif out[at].sent_at is None and out[at].kind == "regulator":
            out[at] = replace(out[at], send_by=letter.send_by)

    for clock in assessment.clocks:
        if clock.duty != "authority" or clock.applies is False:
            continue  # judged below the threshold: no report planned (the assessment says why)
        want(
            Letter(
                id=letter_id(incident_id, "regulator", clock.regime),
                incident_id=incident_id,
                kind="regulator",
                recipient=clock.authority,
                created_at=now,
                send_by=clock.due_at,
            )
        )
    if assessment.people:
        recipient = f"the {assessment.people} {'person' if assessment.people == 1 else 'people'} affected"
        want(Letter(letter_id(incident_id, "notice"), incident_id, "notice", recipient, now))
    for kind in ("cease_and_desist", "deletion_demand"):
        want(Letter(letter_id(incident_id, kind), incident_id, kind, OPERATOR, now))
    return out


def find_letter(letters: Sequence[Letter], kind: LetterKind, which: str = "") -> Letter | None:
    """The one tracked letter of ``kind`` (``which``: its id, or part of its id or recipient, when
    there are several, e.g. ``gdpr`` among regulator reports). None when there is none; LetterError when
    ``which`` does not pick one out."""
    mine = [x for x in letters if x.kind == kind]
    exact = [x for x in mine if x.id == which]
    if exact:
        return exact[0]  # a letter's whole id (the dashboard's buttons send it) always picks it
    if which:
        needle = which.casefold()
        mine = [x for x in mine if needle in x.id.casefold() or needle in x.recipient.casefold()]
    if len(mine) > 1:
        names = ", ".join(x.id.rsplit(":", 1)[-1] if x.kind == "regulator" else x.recipient for x in mine)
        raise LetterError(f"{len(mine)} {kind} letters ({names}): say which with --recipient")
    return mine[0] if mine else None


def take_step(
    letters: Sequence[Letter],
    incident_id: str,
    kind: LetterKind,
    step: LetterStep,
    *,
    at: float,
    by: str,
    which: str = "",
    note: str = "",
    reply_days: float | None = None,
) -> tuple[list[Letter], Letter, str]:
    """Record ``step`` on the letter of ``kind``; a letter not planned yet is tracked from here
    (sending a cease-and-desist before any assessment is normal). Returns the new list, the
    letter as changed and the audit action."""
    if kind not in LETTER_KINDS:
        raise LetterError(f"unknown letter kind {kind!r}")
    if step == "confirmed-deletion" and kind != "deletion_demand":
        raise LetterError("only a deletion demand is answered by a confirmation of deletion")
    out = list(letters)
    letter = find_letter(out, kind, which)
    if letter is None:
        part = which if kind == "regulator" else ""
        recipient = which or (OPERATOR if kind in ("cease_and_desist", "deletion_demand") else "")
        letter = Letter(letter_id(incident_id, kind, part), incident_id, kind, recipient, at)
        out.append(letter)
    position = out.index(letter)
    if step == "sent":
        changed = mark_sent(letter, at, by, reply_days=reply_days if letter.expects_reply else None)
    else:
        default = "deletion confirmed" if step == "confirmed-deletion" else "answer received"
        changed = mark_replied(letter, at, note or default)
    out[position] = changed
    return out, changed, STEP_ACTIONS[step]
