"""Breach assessment helper: who was affected, where they live, and which clocks may be running.

Mass scraping of personal data can be a reportable breach (statement R8). Given an incident's
:class:`~scrapewarden.core.exposure.Exposure` and the time it was detected, this lists the
people and data categories concerned, the jurisdictions their countries point to, and each
notification duty those regimes set, as a deadline where the law names a period (GDPR's 72 hours,
the NDB scheme's 30-day assessment) and as plain words where it does not ("as soon as feasible").

It assists a privacy officer; it is not legal advice and every output says so. Which law applies
depends on more than where a person lives (where the organisation is established, whom it
targets, sector rules), and whether a duty is triggered turns on a risk judgement the officer
makes, recorded here as ``high_risk``. The table of regimes is data: the built-in entries are
checked against the sources cited in docs/notices.md, and operators add or replace entries
with :func:`regimes_from_mapping` (a TOML file named in ``[incidents.notices] regimes_file``).

Pure: no I/O, no clock; the detection time is passed in.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from .exposure import Exposure

NOT_LEGAL_ADVICE = (
    "This assessment assists your privacy officer; it is not legal advice. Whether a duty applies, "
    "and when, depends on facts and law that software cannot judge: have it reviewed by someone "
    "qualified before acting on it."
)

Trigger = Literal["always", "risk", "high_risk"]


@dataclass(frozen=True, slots=True)
class Duty:
    """One thing a regime asks for, and by when."""

    key: str
    """Short id, e.g. ``authority``, ``individuals``, ``record``, ``assessment``."""
    what: str
    """What to do, as a sentence: "Notify the supervisory authority"."""
    wording: str
    """The time limit in the law's own terms: "without undue delay and, where feasible, not later
    than 72 hours after becoming aware"."""
    trigger: Trigger = "always"
    """``always``; ``risk`` (unless the breach is unlikely to result in a risk, GDPR art. 33);
    ``high_risk`` (only if the officer judges the risk high / real risk of significant harm /
    likely serious harm)."""
    hours: float | None = None
    """A fixed period from detection, when the law names one."""
    months: int | None = None
    """A period in calendar months from detection (record keeping)."""
    source: str = ""
    """Where the rule is written (article, section), for the reader to check."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "what": self.what,
            "wording": self.wording,
            "trigger": self.trigger,
            "hours": self.hours,
            "months": self.months,
            "source": self.source,
        }


@dataclass(frozen=True, slots=True)
class Regime:
    code: str
    name: str
    authority: str
    """Who is notified: "the competent supervisory authority", "the OPC"..."""
    countries: tuple[str, ...]
    """ISO 3166 alpha-2 codes of the people it protects (a starting point, see module doc)."""
    duties: tuple[Duty, ...]
    risk_test: str = ""
    """The law's threshold in words, shown next to the duties it gates."""


# The 27 EU member states, then Iceland, Liechtenstein and Norway (EEA).
_EEA = (
    *("AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE"),
    *("IT", "LV", "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE"),
    *("IS", "LI", "NO"),
)

DEFAULT_REGIMES: dict[str, Regime] = {
    "gdpr": Regime(
        code="gdpr",
        name="EU/EEA General Data Protection Regulation (GDPR)",
        authority="the competent supervisory authority (lead authority where the one-stop shop applies)",
        countries=_EEA,
        risk_test="a risk to the rights and freedoms of natural persons (high risk for individuals)",
        duties=(
            Duty(
                "authority",
                "Notify the supervisory authority",
                "without undue delay and, where feasible, not later than 72 hours after becoming "
                "aware of the breach; a later notification must give the reasons for the delay",
                trigger="risk",
                hours=72,
                source="GDPR art. 33(1)",
            ),
            Duty(
                "individuals",
                "Tell the people affected",
                "without undue delay, when the breach is likely to result in a high risk to them",
                trigger="high_risk",
                source="GDPR art. 34(1)",
            ),
            Duty(
                "record",
                "Document the breach (facts, effects, remedial action)",
                "for every personal data breach, whether notified or not",
                source="GDPR art. 33(5)",
            ),
        ),
    ),
    "uk-gdpr": Regime(
        code="uk-gdpr",
        name="United Kingdom GDPR and Data Protection Act 2018",
        authority="the Information Commissioner's Office (ICO)",
        countries=("GB",),
        risk_test="a risk to people's rights and freedoms (high risk for individuals)",
        duties=(
            Duty(
                "authority",
                "Notify the ICO",
                "without undue delay and, where feasible, within 72 hours of becoming aware of the "
                "breach; a later report must give the reasons for the delay",
                trigger="risk",
                hours=72,
                source="UK GDPR art. 33(1)",
            ),
            Duty(
                "individuals",
                "Tell the people affected",
                "without undue delay, when the breach is likely to result in a high risk to them",
                trigger="high_risk",
                source="UK GDPR art. 34(1)",
            ),
            Duty(
                "record",
                "Document the breach (facts, effects, remedial action)",
                "for every personal data breach, whether reported or not",
                source="UK GDPR art. 33(5)",
            ),
        ),
    ),
    "pipeda": Regime(
        code="pipeda",
        name="Canada: Personal Information Protection and Electronic Documents Act (PIPEDA)",
        authority="the Office of the Privacy Commissioner of Canada (OPC)",
        countries=("CA",),
        risk_test="a real risk of significant harm to an individual",
        duties=(
            Duty(
                "authority",
                "Report the breach to the OPC",
                "as soon as feasible after determining that the breach occurred, when it creates a "
                "real risk of significant harm",
                trigger="high_risk",
                source="PIPEDA s. 10.1(1)-(2); Breach of Security Safeguards Regulations s. 2",
            ),
            Duty(
                "individuals",
                "Notify the people affected (and organisations that could reduce the harm)",
                "as soon as feasible after determining that the breach occurred, when it creates a "
                "real risk of significant harm",
                trigger="high_risk",
                source="PIPEDA s. 10.1(3), (6), 10.2",
            ),
            Duty(
                "record",
                "Keep a record of the breach",
                "for every breach of security safeguards, kept for at least 24 months after the "
                "day the breach was determined to have occurred",
                months=24,
                source="PIPEDA s. 10.3; Breach of Security Safeguards Regulations s. 6",
            ),
        ),
    ),
    "au-ndb": Regime(
        code="au-ndb",
        name="Australia: Notifiable Data Breaches scheme (Privacy Act 1988, Part IIIC)",
        authority="the Office of the Australian Information Commissioner (OAIC)",
        countries=("AU",),
        risk_test="likely serious harm to an individual (an eligible data breach)",
        duties=(
            Duty(
                "assessment",
                "Assess whether this is an eligible data breach",
                "a reasonable and expeditious assessment, with all reasonable steps taken to complete "
                "it within 30 days after becoming aware of the grounds to suspect one",
                hours=30 * 24,
                source="Privacy Act 1988 s. 26WH(2)",
            ),
            Duty(
                "authority",
                "Give the OAIC a statement about the breach",
                "as soon as practicable after becoming aware that there are reasonable grounds to "
                "believe it is an eligible data breach",
                trigger="high_risk",
                source="Privacy Act 1988 s. 26WK",
            ),
            Duty(
                "individuals",
                "Notify the people affected (or those at risk) of the statement's contents",
                "as soon as practicable after the statement is prepared",
                trigger="high_risk",
                source="Privacy Act 1988 s. 26WL",
            ),
        ),
    ),
}

SENSITIVE_CATEGORIES = frozenset(
    {
        "health",
        "medical",
        "financial",
        "bank",
        "card",
        "password",
        "credentials",
        "id_number",
        "government_id",
        "passport",
        "religion",
        "ethnicity",
        "sexuality",
        "political",
        "biometric",
        "genetic",
        "criminal",
        "date_of_birth",
        "address",
        "location",
        "phone",
        "children",
    }
)
"""Categories whose exposure makes a high risk more likely; a hint for the officer, no more."""


@dataclass(frozen=True, slots=True)
class Clock:
    """One duty that may apply to this incident, with its deadline if the law names a period."""

    regime: str
    regime_name: str
    authority: str
    duty: str
    what: str
    wording: str
    trigger: Trigger
    applies: bool | None
    """True: applies as assessed; None: depends on the risk judgement not yet recorded;
    False: the officer judged the risk below the threshold (kept so the reasoning is visible)."""
    due_at: float | None
    """Epoch seconds of the deadline, or None where the law names no fixed period."""
    people: int
    """People in this regime's countries."""
    source: str

    @property
    def kind(self) -> str:
        return "keep until" if self.duty == "record" and self.due_at is not None else "due"

    def to_dict(self) -> dict[str, Any]:
        return {
            "regime": self.regime,
            "regime_name": self.regime_name,
            "authority": self.authority,
            "duty": self.duty,
            "what": self.what,
            "wording": self.wording,
            "trigger": self.trigger,
            "applies": self.applies,
            "due_at": self.due_at,
            "due_at_utc": format_utc(self.due_at) if self.due_at is not None else None,
            "people": self.people,
            "source": self.source,
        }


@dataclass(frozen=True, slots=True)
class Jurisdiction:
    regime: str
    name: str
    countries: tuple[str, ...]
    """The affected people's countries that this regime covers."""
    people: int


@dataclass(slots=True)
class Assessment:
    detected_at: float
    people: int
    records: int
    unknown_records: int
    categories: dict[str, int]
    """Category -> people whose data of that category was exposed."""
    countries: dict[str, int]
    """Country code -> people (``""`` for people without a country)."""
    jurisdictions: list[Jurisdiction]
    uncovered_countries: list[str]
    """Countries of affected people that no regime in the table covers: check them by hand."""
    clocks: list[Clock]
    high_risk: bool | None
    risk_hints: list[str] = field(default_factory=list)
    disclaimer: str = NOT_LEGAL_ADVICE

    def to_dict(self) -> dict[str, Any]:
        return {
            "disclaimer": self.disclaimer,
            "detected_at": self.detected_at,
            "detected_at_utc": format_utc(self.detected_at),
            "people": self.people,
            "records": self.records,
            "unknown_records": self.unknown_records,
            "categories": dict(self.categories),
            "countries": dict(self.countries),
            "jurisdictions": [
                {"regime": j.regime, "name": j.name, "countries": list(j.countries), "people": j.people}
                for j in self.jurisdictions
            ],
            "uncovered_countries": list(self.uncovered_countries),
            "high_risk": self.high_risk,
            "risk_hints": list(self.risk_hints),
            "clocks": [c.to_dict() for c in self.clocks],
        }


def format_utc(ts: float) -> str:
    """``2026-11-27 18:00 UTC``: how letters and reports show a moment."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")


def add_months(ts: float, months: int) -> float:
    """The same day and time ``months`` calendar months later (the month's last day if shorter)."""
    moment = datetime.fromtimestamp(ts, UTC)
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day).timestamp()


def normalise_country(value: str) -> str:
    code = value.strip().upper()
    # Common non-ISO spellings of two countries that matter here.
    return {"UK": "GB", "EL": "GR"}.get(code, code)


def assess(
    exposure: Exposure,
    detected_at: float,
    *,
    high_risk: bool | None = None,
    regimes: Mapping[str, Regime] | None = None,
    sensitive: Iterable[str] = SENSITIVE_CATEGORIES,
) -> Assessment:
    """The assessment of one incident detected (become aware of) at ``detected_at``.

    ``high_risk`` is the officer's judgement (GDPR high risk, PIPEDA real risk of significant
    harm, NDB likely serious harm): None until made, and duties gated by it say so.
    """
    table = DEFAULT_REGIMES if regimes is None else regimes
    countries: dict[str, int] = {}
    categories: dict[str, int] = {}
    for entry in exposure.people:
        country = normalise_country(entry.person.country)
        countries[country] = countries.get(country, 0) + 1
        for label in entry.categories:
            categories[label] = categories.get(label, 0) + 1
    jurisdictions: list[Jurisdiction] = []
    clocks: list[Clock] = []
    covered: set[str] = set()
    for regime in table.values():
        mine = tuple(sorted(c for c in countries if c and c in regime.countries))
        if not mine:
            continue
        covered.update(mine)
        people = sum(countries[c] for c in mine)
        jurisdictions.append(Jurisdiction(regime.code, regime.name, mine, people))
        for duty in regime.duties:
            clocks.append(_clock(regime, duty, detected_at, high_risk, people))
    uncovered = sorted(c for c in countries if c not in covered)
    # Deadlines first, soonest first; then duties with no fixed period; records kept last.
    clocks.sort(key=lambda c: (c.duty == "record", c.due_at is None, c.due_at or 0.0, c.regime))
    return Assessment(
        detected_at=detected_at,
        people=exposure.people_count,
        records=len(exposure.records),
        unknown_records=len(exposure.unknown),
        categories=dict(sorted(categories.items())),
        countries=dict(sorted(countries.items())),
        jurisdictions=jurisdictions,
        uncovered_countries=uncovered,
        clocks=clocks,
        high_risk=high_risk,
        risk_hints=_risk_hints(exposure, categories, frozenset(sensitive), uncovered),
    )


def _clock(regime: Regime, duty: Duty, detected_at: float, high_risk: bool | None, people: int) -> Clock:
    applies: bool | None
    if duty.trigger == "always":
        applies = True
    elif duty.trigger == "risk":
        # GDPR art. 33 applies unless the breach is *unlikely* to result in a risk: a judged
        # high risk certainly meets it; "not high" may still be a risk, so it stays open.
        applies = True if high_risk else None
    else:
        applies = high_risk
    due_at: float | None = None
    if duty.hours is not None:
        due_at = detected_at + duty.hours * 3600.0
    elif duty.months is not None:
        due_at = add_months(detected_at, duty.months)
    return Clock(
        regime=regime.code,
        regime_name=regime.name,
        authority=regime.authority,
        duty=duty.key,
        what=duty.what,
        wording=duty.wording,
        trigger=duty.trigger,
        applies=applies,
        due_at=due_at,
        people=people,
        source=duty.source,
    )


def _risk_hints(
    exposure: Exposure, categories: Mapping[str, int], sensitive: frozenset[str], uncovered: list[str]
) -> list[str]:
    hints: list[str] = []
    touchy = sorted(c for c in categories if c in sensitive)
    if touchy:
        hints.append(f"sensitive categories exposed: {', '.join(touchy)}")
    if exposure.people_count >= 1000:
        hints.append(f"large scale: {exposure.people_count} people")
    if exposure.unknown:
        hints.append(f"{len(exposure.unknown)} exposed records could not be matched to a person")
    if "" in uncovered:
        hints.append("some people have no country on record: their jurisdiction is unknown")
    others = [c for c in uncovered if c]
    if others:
        hints.append(f"no regime in the table for: {', '.join(others)}")
    return hints


# -- operator-supplied regimes -------------------------------------------------------------------


class RegimeError(ValueError):
    """A regimes table that cannot be read; the message names the entry and field."""


def regimes_from_mapping(data: Mapping[str, Any]) -> dict[str, Regime]:
    """Regimes from plain data (a parsed TOML file), shaped like::

    [regimes.br-lgpd]
    name = "Brazil: LGPD"
    authority = "the ANPD"
    countries = ["BR"]
    risk_test = "relevant risk or damage to data subjects"
    [[regimes.br-lgpd.duties]]
    key = "authority"
    what = "Notify the ANPD"
    wording = "within a reasonable time"
    trigger = "high_risk"     # always | risk | high_risk
    hours = 72                # optional; or months = 24
    source = "..."
    """
    raw = data.get("regimes", data)
    if not isinstance(raw, Mapping):
        raise RegimeError("regimes: must be a table")
    out: dict[str, Regime] = {}
    for code, entry in raw.items():
        where = f"regimes.{code}"
        if not isinstance(entry, Mapping):
            raise RegimeError(f"{where}: must be a table")
        countries = entry.get("countries", [])
        if not isinstance(countries, list) or not all(isinstance(c, str) for c in countries):
            raise RegimeError(f"{where}.countries: must be a list of country codes")
        duties_raw = entry.get("duties", [])
        if not isinstance(duties_raw, list) or not duties_raw:
            raise RegimeError(f"{where}.duties: must be a non-empty list of tables")
        duties = tuple(_duty(d, f"{where}.duties[{i}]") for i, d in enumerate(duties_raw))
        out[str(code)] = Regime(
            code=str(code),
            name=_text(entry, "name", where, required=True),
            authority=_text(entry, "authority", where, required=True),
            countries=tuple(normalise_country(c) for c in countries),
            duties=duties,
            risk_test=_text(entry, "risk_test", where),
        )
    return out


def merge_regimes(base: Mapping[str, Regime], extra: Mapping[str, Regime]) -> dict[str, Regime]:
    """``base`` with ``extra``'s entries added; an entry with the same code replaces the base one."""
    merged = dict(base)
    merged.update(extra)
    return merged


def _duty(raw: Any, where: str) -> Duty:
    if not isinstance(raw, Mapping):
        raise RegimeError(f"{where}: must be a table")
    unknown = set(raw) - {"key", "what", "wording", "trigger", "hours", "months", "source"}
    if unknown:
        raise RegimeError(f"{where}: unknown key {sorted(unknown)[0]!r}")
    trigger = raw.get("trigger", "always")
    if trigger not in ("always", "risk", "high_risk"):
        raise RegimeError(f"{where}.trigger: must be always, risk or high_risk")
    hours = raw.get("hours")
    months = raw.get("months")
    if hours is not None and (isinstance(hours, bool) or not isinstance(hours, int | float) or hours <= 0):
        raise RegimeError(f"{where}.hours: must be a positive number")
    if months is not None and (isinstance(months, bool) or not isinstance(months, int) or months <= 0):
        raise RegimeError(f"{where}.months: must be a positive whole number")
    if hours is not None and months is not None:
        raise RegimeError(f"{where}: give hours or months, not both")
    return Duty(
        key=_text(raw, "key", where, required=True),
        what=_text(raw, "what", where, required=True),
        wording=_text(raw, "wording", where, required=True),
        trigger=trigger,
        hours=float(hours) if hours is not None else None,
        months=months,
        source=_text(raw, "source", where),
    )


def _text(entry: Mapping[str, Any], key: str, where: str, *, required: bool = False) -> str:
    value = entry.get(key, "")
    if not isinstance(value, str):
        raise RegimeError(f"{where}.{key}: must be a string")
    if required and not value.strip():
        raise RegimeError(f"{where}.{key}: required")
    return value
