from __future__ import annotations

import pytest

from scrapewarden.core.breach import Assessment, assess
from scrapewarden.core.exposure import Owner, Person, Record, map_exposure
from scrapewarden.core.follow_up import OPERATOR, find_letter, plan_letters, take_step
from scrapewarden.core.incidents import Incident, RiskJudgement
from scrapewarden.core.letters import DAY, Letter, LetterError, overdue

T0 = 1_795_000_000.0
HOUR = 3600.0


def _assessment(high_risk: bool | None, countries: tuple[str, ...] = ("FR", "CA")) -> Assessment:
    records = [Record("profile", str(i)) for i in range(len(countries))]
    owners = {r: Owner(Person(r.id, country=c)) for r, c in zip(records, countries, strict=True)}
    return assess(map_exposure(records, owners, {}), T0, high_risk=high_risk)


def test_high_risk_plans_a_report_per_regulator_with_its_deadline_and_the_other_letters() -> None:
    letters = plan_letters("INC-1", _assessment(True), [], now=T0 + HOUR)
    by_id = {x.id: x for x in letters}
    assert set(by_id) == {
        "INC-1:regulator:gdpr",
        "INC-1:regulator:pipeda",
        "INC-1:notice",
        "INC-1:cease_and_desist",
        "INC-1:deletion_demand",
    }
    assert by_id["INC-1:regulator:gdpr"].send_by == T0 + 72 * HOUR
    assert by_id["INC-1:regulator:pipeda"].send_by is None  # "as soon as feasible": no fixed period
    assert by_id["INC-1:notice"].recipient == "the 2 people affected"
    assert by_id["INC-1:cease_and_desist"].recipient == OPERATOR
    # The GDPR report is overdue once its 72 hours have passed without it being sent.
    late = overdue(letters, T0 + 73 * HOUR, remind_every=0)
    assert [r.letter_id for r in late] == ["INC-1:regulator:gdpr"]


def test_low_risk_plans_no_report_where_the_duty_needs_a_high_risk() -> None:
    letters = plan_letters("INC-1", _assessment(False), [], now=T0)
    ids = {x.id for x in letters}
    assert "INC-1:regulator:pipeda" not in ids  # PIPEDA: only a real risk of significant harm
    assert "INC-1:regulator:gdpr" in ids  # GDPR art. 33: unless *unlikely* to be a risk


def test_planning_again_keeps_history_and_adds_nothing_twice() -> None:
    first = plan_letters("INC-1", _assessment(True), [], now=T0)
    sent, letter, action = take_step(
        first, "INC-1", "cease_and_desist", "sent", at=T0 + DAY, by="dana", reply_days=7
    )
    assert action == "letter.sent" and letter.reply_due_at == T0 + 8 * DAY
    again = plan_letters("INC-1", _assessment(True), sent, now=T0 + 2 * DAY)
    assert len(again) == len(first)
    assert find_letter(again, "cease_and_desist") == letter


def test_steps_on_letters() -> None:
    letters, demand, _ = take_step([], "INC-1", "deletion_demand", "sent", at=T0, by="dana", reply_days=14)
    assert demand.recipient == OPERATOR and demand.state == "awaiting reply"
    letters, done, action = take_step(
        letters, "INC-1", "deletion_demand", "confirmed-deletion", at=T0 + DAY, by="x"
    )
    assert (
        action == "deletion.confirmed"
        and done.state == "confirmed"
        and done.reply_note == "deletion confirmed"
    )
    with pytest.raises(LetterError):
        take_step(letters, "INC-1", "deletion_demand", "confirmed-deletion", at=T0 + DAY, by="x")
    with pytest.raises(LetterError, match="only a deletion demand"):
        take_step(letters, "INC-1", "cease_and_desist", "confirmed-deletion", at=T0, by="x")
    with pytest.raises(LetterError, match="never sent"):
        take_step([], "INC-1", "cease_and_desist", "replied", at=T0, by="x")


def test_several_regulator_reports_need_saying_which() -> None:
    letters = plan_letters("INC-1", _assessment(True), [], now=T0)
    with pytest.raises(LetterError, match="--recipient"):
        take_step(letters, "INC-1", "regulator", "sent", at=T0, by="dana")
    _, letter, _ = take_step(letters, "INC-1", "regulator", "sent", at=T0, by="dana", which="gdpr")
    assert letter.id == "INC-1:regulator:gdpr" and letter.sent_at == T0


def test_incidents_stored_before_judgements_and_letters_still_load() -> None:
    old = Incident("INC-1", "t", T0).to_dict()
    del old["risk"], old["letters"]
    loaded = Incident.from_dict(old)
    assert loaded.risk is None and loaded.letters == []
    loaded.risk = RiskJudgement(True, T0, "dana", "health data")
    loaded.letters, _, _ = take_step([], "INC-1", "notice", "sent", at=T0, by="dana")
    again = Incident.from_dict(loaded.to_dict())
    assert again.risk == loaded.risk and again.letters == loaded.letters


def test_a_letters_whole_id_picks_it_even_when_it_is_part_of_another_id() -> None:
    letters = plan_letters("INC-1", _assessment(True), [], now=T0)
    # An operator's own regime whose code starts like a built-in one: "gdpr" is in both ids.
    extra = Letter("INC-1:regulator:gdpr-x", "INC-1", "regulator", "the other authority", T0)
    letters.append(extra)
    with pytest.raises(LetterError, match="say which"):
        find_letter(letters, "regulator", "gdpr")
    chosen = find_letter(letters, "regulator", "INC-1:regulator:gdpr")
    assert chosen is not None and chosen.id == "INC-1:regulator:gdpr"
    assert find_letter(letters, "regulator", "INC-1:regulator:gdpr-x") == extra
