"""Tracking letters: sent, answered, overdue, reminded; records survive a JSON round trip."""

from __future__ import annotations

import json

import pytest

from scrapewarden.core.letters import (
    DAY,
    Letter,
    LetterError,
    mark_reminded,
    mark_replied,
    mark_sent,
    overdue,
)

T0 = 1_800_000_000.0


def _letters() -> list[Letter]:
    return [
        Letter("L1", "inc-1", "deletion_demand", "Scraper Ltd", created_at=T0),
        Letter("L2", "inc-1", "regulator", "CNIL", created_at=T0, send_by=T0 + 3 * DAY),
        Letter("L3", "inc-1", "cease_and_desist", "Scraper Ltd", created_at=T0),
        Letter("L4", "inc-1", "notice", "ada@example.org", created_at=T0),
    ]


def test_deletion_demand_overdue_until_confirmed() -> None:
    demand = mark_sent(_letters()[0], T0 + DAY, "dpo", reply_days=14)
    assert demand.reply_due_at == T0 + 15 * DAY and demand.state == "awaiting reply"
    assert overdue([demand], T0 + 15 * DAY) == []  # due, not yet overdue
    late = overdue([demand], T0 + 17 * DAY)
    assert [(r.letter_id, r.reason) for r in late] == [("L1", "no reply")]
    assert late[0].overdue_seconds == 2 * DAY
    assert "confirmation of deletion" in late[0].message and "Scraper Ltd" in late[0].message
    done = mark_replied(demand, T0 + 18 * DAY, "signed confirmation received")
    assert done.state == "confirmed"
    assert overdue([done], T0 + 40 * DAY) == []


def test_unsent_regulator_report_is_overdue_after_its_deadline() -> None:
    letters = _letters()
    assert [r.letter_id for r in overdue(letters, T0 + 2 * DAY)] == []
    late = overdue(letters, T0 + 4 * DAY)
    assert [(r.letter_id, r.reason) for r in late] == [("L2", "not sent")]
    assert "past the date it had to be sent" in late[0].message
    sent = mark_sent(letters[1], T0 + 5 * DAY, "dpo")
    assert sent.state == "sent" and overdue([sent], T0 + 9 * DAY) == []


def test_reminders_repeat_only_after_the_interval_most_overdue_first() -> None:
    a = mark_sent(_letters()[0], T0, "dpo", reply_days=1)
    b = mark_sent(_letters()[2], T0, "dpo", reply_days=3)
    now = T0 + 10 * DAY
    assert [r.letter_id for r in overdue([b, a], now)] == ["L1", "L3"]
    a = mark_reminded(a, now)
    assert [r.letter_id for r in overdue([a, b], now + DAY, remind_every=7 * DAY)] == ["L3"]
    assert [r.letter_id for r in overdue([a], now + 7 * DAY, remind_every=7 * DAY)] == ["L1"]


def test_wrong_steps_are_refused() -> None:
    demand, _, _, notice = _letters()
    with pytest.raises(LetterError):
        mark_replied(demand, T0, "too early")
    with pytest.raises(LetterError):
        mark_sent(demand, T0, "dpo")  # needs a reply period
    sent = mark_sent(notice, T0, "dpo")
    with pytest.raises(LetterError):
        mark_sent(sent, T0, "dpo")
    with pytest.raises(LetterError):
        mark_replied(sent, T0, "a notice expects no reply")


def test_json_round_trip() -> None:
    letter = mark_replied(mark_sent(_letters()[0], T0, "dpo", reply_days=14), T0 + DAY, "ok")
    data = json.loads(json.dumps(letter.to_dict()))
    assert Letter.from_dict(data) == letter
    with pytest.raises(LetterError):
        Letter.from_dict({**data, "kind": "love_letter"})
