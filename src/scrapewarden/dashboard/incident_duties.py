"""The incident page's duties: the people affected, the breach assessment, the letter drafts, the
letters' tracking and the evidence export (issue 8's workflow, on the dashboard).

Nothing here works anything out itself. The people and the assessment come from
:func:`scrapewarden.incidents.duties.assess_incident`, the drafts from the same
:class:`~scrapewarden.incidents.drafts.Drafter` the export uses (one letter at a time: an
incident can expose 100,000 people), the assessment's wording from
:mod:`scrapewarden.incidents.assessment_text`, the letters' rows from
:mod:`scrapewarden.incidents.tracking`, and the bundle from
:func:`scrapewarden.incidents.export.export_incident` - the code behind ``scrapewarden incidents
assess|letters|letter|export``. Changes go through :class:`~scrapewarden.incidents.book.IncidentBook`
(``incident.assess``, ``letter.sent``, ``letter.replied``, ``deletion.confirmed``) or the export
(``incident.export``), each audited with the logged-in user as actor.

The policy is the dashboard Warden's (``--policy``; relative paths in it are taken from its
folder). The people are personal data of the site's users: they are looked up again for each
view, never copied into the incident store, and the export (the whole list, with e-mail
addresses) needs the analyst role.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from ..core.breach import Assessment
from ..core.exposure import AffectedPerson
from ..core.follow_up import LetterStep
from ..core.incidents import Incident, IncidentError
from ..core.letters import LetterError
from ..core.policy import Policy
from ..incidents.assessment_text import assessment_lines
from ..incidents.book import IncidentBook, IncidentNotFound
from ..incidents.drafts import OPERATOR_LETTERS, Draft, Drafter, Operator
from ..incidents.duties import WORK_OUT_ERRORS, assess_incident, drafter_for
from ..incidents.export import ExportWriteError, export_incident
from ..incidents.facts import IncidentFacts
from ..incidents.people import PeopleFound
from ..incidents.tracking import LETTER_NAMES, STEPS, letter_rows, reply_days
from .web import Visit, dashboard_of, page

PEOPLE_PAGE = 50
MAX_TEXT = 500
"""Notes, recipients, operator names: as ``scrapewarden incidents letter|export`` accept them."""
MAX_JUDGEMENT_NOTE = 2000
PAGE_HINT = "an analyst records one below"


class DutyInputError(ValueError):
    pass


def check_text(value: str, label: str, limit: int = MAX_TEXT) -> str:
    value = " ".join(value.split())
    if len(value) > limit or not value.isprintable():
        raise DutyInputError(f"{label}: at most {limit} printable characters")
    return value


def policy_of(request: Request) -> tuple[Policy, Path]:
    """The policy the dashboard runs with, and the folder its relative paths start from."""
    dash = dashboard_of(request)
    path: Path | None = dash.policy_path
    return dash.warden.policy, (path.parent if path is not None else Path.cwd())


@dataclass(slots=True)
class Worked:
    """An incident's people and assessment, or why they could not be worked out."""

    facts: IncidentFacts | None = None
    found: PeopleFound | None = None
    assessment: Assessment | None = None
    error: str = ""
    lines: list[str] = field(default_factory=list)


def work(request: Request, incident: Incident, *, high_risk: bool | None = None) -> Worked:
    policy, base = policy_of(request)
    try:
        facts, found, assessment = assess_incident(incident, policy, base_dir=base, high_risk=high_risk)
    except WORK_OUT_ERRORS as exc:
        return Worked(error=str(exc))
    lines = assessment_lines(incident.id, assessment, incident.risk, found.bad_rows, hint=PAGE_HINT)
    return Worked(facts, found, assessment, lines=lines)


# -- what the incident page shows ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DraftChoice:
    value: str
    """``notice``, ``regulator:gdpr``, ``regulator:`` (none known), ``cease_and_desist``..."""
    label: str


def draft_choices(assessment: Assessment) -> list[DraftChoice]:
    """The letters ``render_all`` would draft for this assessment, in its order."""
    out = [DraftChoice("notice", "notice to a person affected")] if assessment.people else []
    regimes = [(j.regime, j.name) for j in assessment.jurisdictions] or [("", "the applicable law")]
    out += [DraftChoice(f"regulator:{code}", f"report to the regulator ({name})") for code, name in regimes]
    out += [DraftChoice(kind, kind.replace("_", "-") + " letter") for kind in OPERATOR_LETTERS]
    return out


def _int(raw: str | None, default: int = 1) -> int:
    try:
        return max(1, int(raw or default))
    except ValueError:
        return default


def context(request: Request, incident: Incident) -> dict[str, Any]:
    """The duties part of the incident page's template context."""
    dash = dashboard_of(request)
    q = request.query_params
    now = dash.clock()
    worked = work(request, incident)
    rows = letter_rows(incident.letters, now)
    out: dict[str, Any] = {
        "worked": worked,
        "letters": rows,
        "overdue_count": sum(1 for r in rows if r["overdue"]),
        "letter_names": LETTER_NAMES,
        "steps": STEPS,
        "now": now,
        "people_source": dash.warden.policy.incidents.people.source,
    }
    if worked.found is None or worked.assessment is None or worked.facts is None:
        return out
    people = worked.found.exposure.people
    pages = max(1, -(-len(people) // PEOPLE_PAGE))
    number = min(_int(q.get("people_page")), pages)
    shown = people[(number - 1) * PEOPLE_PAGE : number * PEOPLE_PAGE]
    out.update(people=shown, people_page=number, people_pages=pages)
    # One draft, chosen on the page (the first letter by default).
    choices = draft_choices(worked.assessment)
    wanted = q.get("draft", "")
    choice = next((c for c in choices if c.value == wanted), choices[0])
    policy, base = policy_of(request)
    drafter = drafter_for(policy, base_dir=base)
    person = next((p for p in people if p.person.id == q.get("person")), shown[0] if shown else None)
    languages = drafter.notice_languages()
    language = q.get("lang", "")
    operator = Operator(q.get("operator", "")[:MAX_TEXT], q.get("operator_contact", "")[:MAX_TEXT])
    out.update(
        choices=choices,
        choice=choice,
        person=person,
        languages=languages,
        language=language if language in languages else "",
        operator=operator,
    )
    try:
        out["draft"] = one_draft(request, drafter, worked, choice.value, person, out["language"], operator)
    except WORK_OUT_ERRORS as exc:
        out["draft_error"] = str(exc)
    return out


def one_draft(
    request: Request,
    drafter: Drafter,
    worked: Worked,
    choice: str,
    person: AffectedPerson | None,
    language: str,
    operator: Operator,
) -> Draft:
    """The letter ``choice`` names (see :func:`draft_choices`), as the export drafts it."""
    assert worked.facts is not None and worked.found is not None and worked.assessment is not None
    base_context = drafter.context(
        worked.facts,
        worked.found.exposure,
        worked.assessment,
        drafted_at=dashboard_of(request).clock(),
        operator=operator,
    )
    kind, _, regime = choice.partition(":")
    return drafter.draft(kind, base_context, person=person, regime=regime, language=language or None)


# -- the changes -----------------------------------------------------------------------------------


def _book(request: Request) -> IncidentBook:
    dash = dashboard_of(request)
    return IncidentBook(dash.store, clock=dash.clock)


def _back(incident_id: str, done: str, anchor: str) -> RedirectResponse:
    from urllib.parse import quote

    return RedirectResponse(f"/incidents/{quote(incident_id, safe='')}?done={done}#{anchor}", status_code=303)


def judge(request: Request, incident_id: str, high_risk: bool, note: str, by: str) -> Incident:
    """Record the officer's judgement with the assessment made under it (the letters it calls for
    are tracked from then on), as ``scrapewarden incidents assess --high-risk|--low-risk``."""
    incident = _book(request).get(incident_id)
    worked = work(request, incident, high_risk=high_risk)
    if worked.assessment is None:
        raise DutyInputError(f"the assessment could not be worked out: {worked.error}")
    return _book(request).judge(incident_id, high_risk, by=by, note=note, assessment=worked.assessment)


def track_letter(
    request: Request, incident_id: str, kind_name: str, step: str, *, by: str, which: str = "", note: str = ""
) -> Any:
    """One step on one letter, as ``scrapewarden incidents letter``; the letter as changed."""
    kind = LETTER_NAMES.get(kind_name) or (kind_name if kind_name in LETTER_NAMES.values() else None)
    if kind is None:
        raise DutyInputError(f"kind must be one of {', '.join(LETTER_NAMES)}")
    if step not in STEPS:
        raise DutyInputError(f"step must be one of {', '.join(STEPS)}")
    which = check_text(which, "recipient")
    note = check_text(note, "note")
    days = reply_days(dashboard_of(request).warden.policy.incidents.notices, kind)
    _, changed = _book(request).letter(
        incident_id, kind, cast(LetterStep, step), by=by, which=which, note=note, reply_days=days
    )
    return changed


@page("analyst")
def judge_page(request: Request, visit: Visit) -> Response:
    assert visit.user is not None
    dash = dashboard_of(request)
    incident_id = request.path_params["incident_id"]
    form = visit.form
    risk = form.get("risk", "")
    try:
        if risk not in ("high", "low"):
            raise DutyInputError("choose high or low risk")
        note = check_text(form.get("note", ""), "note", MAX_JUDGEMENT_NOTE)
        judge(request, incident_id, risk == "high", note, visit.user.name)
    except IncidentNotFound:
        return dash.error(request, visit, 404, "No such incident.")
    except (DutyInputError, IncidentError) as exc:
        return _refused(request, visit, incident_id, str(exc), "assessment")
    return _back(incident_id, "judged", "assessment")


@page("analyst")
def letter_page(request: Request, visit: Visit) -> Response:
    assert visit.user is not None
    dash = dashboard_of(request)
    incident_id = request.path_params["incident_id"]
    form = visit.form
    try:
        track_letter(
            request,
            incident_id,
            form.get("kind", ""),
            form.get("step", ""),
            by=visit.user.name,
            which=form.get("which", ""),
            note=form.get("note", ""),
        )
    except IncidentNotFound:
        return dash.error(request, visit, 404, "No such incident.")
    except (DutyInputError, LetterError) as exc:
        return _refused(request, visit, incident_id, str(exc), "letters")
    return _back(incident_id, "letter", "letters")


def _refused(request: Request, visit: Visit, incident_id: str, error: str, section: str) -> Response:
    """The incident page again (400) with ``error`` beside the form that was refused."""
    from .incidents_view import show_incident  # that module lists these routes: imported late

    try:
        incident = _book(request).get(incident_id)
    except IncidentNotFound:
        return dashboard_of(request).error(request, visit, 404, "No such incident.")
    return show_incident(request, visit, incident, status=400, error=error, section=section, form=visit.form)


def bundle_name(incident_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "_", incident_id)[:80] + "-evidence.zip"


@page("analyst")
def export_page(request: Request, visit: Visit) -> Response:
    """The evidence bundle as a download, audited as ``incident.export`` (the zip's SHA-256)."""
    assert visit.user is not None
    dash = dashboard_of(request)
    form = visit.form
    try:
        incident = _book(request).get(request.path_params["incident_id"])
        operator = Operator(
            check_text(form.get("operator", ""), "operator"),
            check_text(form.get("operator_contact", ""), "operator contact"),
        )
    except IncidentNotFound:
        return dash.error(request, visit, 404, "No such incident.")
    except DutyInputError as exc:
        return dash.error(request, visit, 400, str(exc))
    try:
        name, body = make_bundle(request, incident, operator, by=visit.user.name)
    except EXPORT_ERRORS as exc:
        return dash.error(request, visit, 500, f"The bundle could not be made: {exc}")
    return zip_download(name, body)


EXPORT_ERRORS = (ExportWriteError, *WORK_OUT_ERRORS)


def make_bundle(request: Request, incident: Incident, operator: Operator, *, by: str) -> tuple[str, bytes]:
    """The evidence bundle's file name and bytes, audited as ``incident.export`` with ``by`` as
    actor (raises one of ``EXPORT_ERRORS`` when it cannot be made)."""
    dash = dashboard_of(request)
    policy, base = policy_of(request)
    name = bundle_name(incident.id)
    with tempfile.TemporaryDirectory(prefix="scrapewarden-export-") as folder:
        out = Path(folder) / name
        export_incident(
            dash.store,
            incident,
            policy,
            out,
            by=by,
            now=dash.clock(),
            base_dir=base,
            operator=operator,
            name=name,
        )
        return name, out.read_bytes()


def zip_download(name: str, body: bytes) -> Response:
    return Response(
        body,
        media_type="application/zip",
        headers={"content-disposition": f'attachment; filename="{name}"'},
    )


def routes() -> list[Route]:
    return [
        Route("/incidents/{incident_id}/judge", judge_page, methods=["POST"]),
        Route("/incidents/{incident_id}/letters", letter_page, methods=["POST"]),
        Route("/incidents/{incident_id}/export", export_page, methods=["POST"]),
    ]
