"""From an incident's evidence to its duties, in one call: people, assessment, drafts, bundle.

This is the glue a CLI command or the dashboard calls: look the exposed records up
(:mod:`.people`), assess them (:mod:`scrapewarden.core.breach`, with the operator's extra regimes
read from ``[incidents.notices] regimes_file``), draft the letters (:mod:`.drafts`) and, when
asked, write the evidence bundle (:mod:`.bundle`).
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from jinja2 import TemplateError

from ..core.breach import DEFAULT_REGIMES, Assessment, Regime, RegimeError, assess, merge_regimes
from ..core.breach import regimes_from_mapping as _regimes_from_mapping
from ..core.incidents import Incident
from ..core.letters import Letter
from ..core.policy import Policy
from .bundle import Exported, bundle_files, export_bundle
from .drafts import Drafter, Drafts, Operator
from .facts import IncidentFacts, facts_from_incident_dict
from .people import PeopleFound, PeopleLookup, PeopleLookupError, find_people, lookup_from_policy

WORK_OUT_ERRORS: tuple[type[Exception], ...] = (RegimeError, TemplateError, OSError, PeopleLookupError)
"""What working duties out may raise from the operator's own set-up (a missing people CSV, a
broken template or regimes file): a command or page says what, it does not crash."""


def load_regimes(path: str | Path) -> dict[str, Regime]:
    """The built-in regimes plus those in the TOML file at ``path`` (same code: replaced)."""
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise RegimeError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise RegimeError(f"{path}: invalid TOML: {exc}") from None
    try:
        extra = _regimes_from_mapping(data)
    except RegimeError as exc:
        raise RegimeError(f"{path}: {exc}") from None
    return merge_regimes(DEFAULT_REGIMES, extra)


@dataclass(slots=True)
class Duties:
    facts: IncidentFacts
    found: PeopleFound
    assessment: Assessment
    drafts: Drafts


def assess_facts(
    facts: IncidentFacts,
    policy: Policy,
    *,
    lookup: PeopleLookup | None = None,
    base_dir: str | Path = ".",
    high_risk: bool | None = None,
) -> tuple[PeopleFound, Assessment]:
    """The people behind the exposed records and the assessment, without drafting letters
    (what ``incidents assess`` needs; drafting 100,000 notices takes a while)."""
    base = Path(base_dir)
    notices = policy.incidents.notices
    if lookup is None:
        lookup = lookup_from_policy(policy.incidents.people, base_dir=base)
    found = find_people(facts.records, policy, lookup)
    regimes = load_regimes(base / notices.regimes_file) if notices.regimes_file else DEFAULT_REGIMES
    return found, assess(found.exposure, facts.detected_at, high_risk=high_risk, regimes=regimes)


def assess_incident(
    incident: Incident, policy: Policy, *, base_dir: str | Path = ".", high_risk: bool | None = None
) -> tuple[IncidentFacts, PeopleFound, Assessment]:
    """:func:`assess_facts` for a stored incident, under the officer's recorded judgement unless
    ``high_risk`` is given."""
    facts = facts_from_incident_dict(incident.to_dict())
    judged = high_risk if high_risk is not None else (incident.risk.high_risk if incident.risk else None)
    found, assessment = assess_facts(facts, policy, base_dir=base_dir, high_risk=judged)
    return facts, found, assessment


def drafter_for(policy: Policy, *, base_dir: str | Path = ".") -> Drafter:
    """The drafter the policy describes (its ``templates_dir`` taken from ``base_dir``)."""
    notices = policy.incidents.notices
    templates = Path(base_dir) / notices.templates_dir if notices.templates_dir else ""
    return Drafter(notices, templates_dir=templates)


def work_out(
    facts: IncidentFacts,
    policy: Policy,
    *,
    drafted_at: float,
    lookup: PeopleLookup | None = None,
    base_dir: str | Path = ".",
    high_risk: bool | None = None,
    operator: Operator | None = None,
) -> Duties:
    """Everything an incident calls for. ``lookup`` defaults to the one the policy describes;
    relative paths in the policy (CSV, database, templates, regimes) are taken from ``base_dir``."""
    base = Path(base_dir)
    found, assessment = assess_facts(facts, policy, lookup=lookup, base_dir=base, high_risk=high_risk)
    drafter = drafter_for(policy, base_dir=base)
    drafts = drafter.render_all(facts, found.exposure, assessment, drafted_at=drafted_at, operator=operator)
    return Duties(facts, found, assessment, drafts)


def export(duties: Duties, path: str | Path, *, letters: Sequence[Letter] = ()) -> Exported:
    files = bundle_files(
        duties.facts, duties.found.exposure, duties.assessment, duties.drafts, letters=letters
    )
    return export_bundle(path, files, incident_id=duties.facts.id)
