"""The breach assessment helper: jurisdictions from countries, clocks as deadlines, disclaimer."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from scrapewarden.core.breach import (
    DEFAULT_REGIMES,
    NOT_LEGAL_ADVICE,
    RegimeError,
    add_months,
    assess,
    merge_regimes,
    regimes_from_mapping,
)
from scrapewarden.core.exposure import Owner, Person, Record, map_exposure

DETECTED = datetime(2026, 11, 27, 18, 0, tzinfo=UTC).timestamp()


def _exposure(countries: list[str], categories: tuple[str, ...] = ("name",)):
    records = [Record("profile", str(i)) for i in range(len(countries))]
    pairs = enumerate(zip(records, countries, strict=True))
    owners = {r: Owner(Person(f"p{i}", country=c)) for i, (r, c) in pairs}
    return map_exposure(records, owners, {"profile": categories})


def _clock(assessment, regime: str, duty: str):
    return next(c for c in assessment.clocks if c.regime == regime and c.duty == duty)


def test_gdpr_72_hours_from_detection_and_individuals_when_high_risk() -> None:
    result = assess(_exposure(["FR", "DE", "fr"]), DETECTED)
    assert result.people == 3
    assert result.countries == {"DE": 1, "FR": 2}
    assert [(j.regime, j.countries, j.people) for j in result.jurisdictions] == [("gdpr", ("DE", "FR"), 3)]
    authority = _clock(result, "gdpr", "authority")
    assert authority.due_at == DETECTED + 72 * 3600
    assert authority.to_dict()["due_at_utc"] == "2026-11-30 18:00 UTC"
    assert authority.applies is None  # "unless unlikely to result in a risk": the officer decides
    individuals = _clock(result, "gdpr", "individuals")
    assert individuals.due_at is None and "without undue delay" in individuals.wording
    assert individuals.applies is None
    judged = assess(_exposure(["FR"]), DETECTED, high_risk=True)
    assert _clock(judged, "gdpr", "individuals").applies is True
    assert _clock(judged, "gdpr", "authority").applies is True
    low = assess(_exposure(["FR"]), DETECTED, high_risk=False)
    assert _clock(low, "gdpr", "individuals").applies is False


def test_uk_canada_australia() -> None:
    result = assess(_exposure(["UK", "CA", "AU", "AU"]), DETECTED)
    assert {j.regime: j.people for j in result.jurisdictions} == {"uk-gdpr": 1, "pipeda": 1, "au-ndb": 2}
    assert _clock(result, "uk-gdpr", "authority").due_at == DETECTED + 72 * 3600
    pipeda_report = _clock(result, "pipeda", "authority")
    assert pipeda_report.due_at is None and "as soon as feasible" in pipeda_report.wording
    record = _clock(result, "pipeda", "record")
    assert record.to_dict()["due_at_utc"] == "2028-11-27 18:00 UTC"  # kept 24 months
    assessment = _clock(result, "au-ndb", "assessment")
    assert assessment.due_at == DETECTED + 30 * 86400
    assert assessment.applies is True
    assert "as soon as practicable" in _clock(result, "au-ndb", "individuals").wording
    # Fixed deadlines first, soonest first.
    due = [c.due_at for c in result.clocks if c.due_at is not None and c.duty != "record"]
    assert due == sorted(due)


def test_disclaimer_and_hints_are_in_every_output() -> None:
    result = assess(_exposure(["BR", "", "FR"], ("name", "location")), DETECTED)
    data = result.to_dict()
    assert data["disclaimer"] == NOT_LEGAL_ADVICE
    assert "not legal advice" in NOT_LEGAL_ADVICE
    assert result.uncovered_countries == ["", "BR"]
    hints = " | ".join(result.risk_hints)
    assert "location" in hints and "BR" in hints and "no country" in hints
    json.dumps(data)  # plain data all the way down


def test_operators_extend_the_table() -> None:
    extra = regimes_from_mapping(
        {
            "regimes": {
                "br-lgpd": {
                    "name": "Brazil: LGPD",
                    "authority": "the ANPD",
                    "countries": ["br"],
                    "duties": [
                        {
                            "key": "authority",
                            "what": "Notify the ANPD",
                            "wording": "within 3 working days",
                            "trigger": "high_risk",
                            "hours": 72,
                            "source": "ANPD Resolution 15/2024",
                        },
                    ],
                }
            }
        }
    )
    table = merge_regimes(DEFAULT_REGIMES, extra)
    result = assess(_exposure(["BR"]), DETECTED, high_risk=True, regimes=table)
    clock = _clock(result, "br-lgpd", "authority")
    assert clock.applies is True and clock.due_at == DETECTED + 72 * 3600
    assert result.uncovered_countries == []


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"regimes": {"x": {"name": "X", "authority": "A", "countries": ["XX"], "duties": []}}}, "duties"),
        ({"regimes": {"x": {"authority": "A", "countries": [], "duties": [{}]}}}, "regimes.x.duties[0].key"),
        (
            {
                "regimes": {
                    "x": {
                        "name": "X",
                        "authority": "A",
                        "duties": [{"key": "k", "what": "w", "wording": "w", "trigger": "maybe"}],
                    }
                }
            },
            "trigger",
        ),
        (
            {
                "regimes": {
                    "x": {
                        "name": "X",
                        "authority": "A",
                        "duties": [{"key": "k", "what": "w", "wording": "w", "hours": -1}],
                    }
                }
            },
            "hours",
        ),
    ],
)
def test_bad_tables_are_named(data, message) -> None:
    with pytest.raises(RegimeError, match=message.replace("[", r"\[").replace("]", r"\]")):
        regimes_from_mapping(data)


def test_add_months_keeps_the_day_or_takes_the_last() -> None:
    jan31 = datetime(2026, 1, 31, 12, tzinfo=UTC).timestamp()
    assert datetime.fromtimestamp(add_months(jan31, 1), UTC) == datetime(2026, 2, 28, 12, tzinfo=UTC)
    assert datetime.fromtimestamp(add_months(jan31, 24), UTC) == datetime(2028, 1, 31, 12, tzinfo=UTC)
