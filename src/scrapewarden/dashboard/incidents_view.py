"""The Incidents page: the list (filter by stage and owner), one incident's evidence, and the
two steps the team takes from here, assign and advance (analyst and above).

Everything goes through :class:`~scrapewarden.incidents.book.IncidentBook`, which writes the
audit entry for each step itself (``incident.assign``, ``incident.advance``) with the logged-in
user as actor, and retries when another writer saved the incident first. The people affected,
the breach assessment, the drafts, the letters and the export are :mod:`.incident_duties`.
"""

from __future__ import annotations

from typing import Any, cast

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from ..core.incidents import STAGE_MEANING, STAGES, Incident, IncidentError, Stage
from ..incidents.book import IncidentBook, IncidentNotFound
from . import incident_duties
from .accounts import USER_NAME
from .web import Visit, dashboard_of, page

MAX_NOTE_LENGTH = 1000
MAX_TEAM_LENGTH = 100


def _book(request: Request) -> IncidentBook:
    dash = dashboard_of(request)
    return IncidentBook(dash.store, clock=dash.clock)


def filtered(incidents: list[Incident], *, stage: str = "", owner: str = "") -> list[Incident]:
    """Newest first; ``owner`` ``-`` means nobody owns it yet."""
    kept = [
        i
        for i in incidents
        if (not stage or i.stage == stage or (stage == "active" and i.is_open))
        and (not owner or i.owner == ("" if owner == "-" else owner))
    ]
    return sorted(kept, key=lambda i: (-i.opened_at, i.id))


@page("viewer")
def incidents_page(request: Request, visit: Visit) -> Response:
    dash = dashboard_of(request)
    q = request.query_params
    stage, owner = q.get("stage", ""), q.get("owner", "")
    every = _book(request).list()
    return dash.render(
        request,
        visit,
        "incidents.html",
        incidents=filtered(every, stage=stage, owner=owner),
        total=len(every),
        stage=stage,
        owner=owner,
        stages=STAGES,
        owners=sorted({i.owner for i in every if i.owner}),
    )


@page("viewer")
def incident_page(request: Request, visit: Visit) -> Response:
    dash = dashboard_of(request)
    try:
        incident = _book(request).get(request.path_params["incident_id"])
    except IncidentNotFound:
        return dash.error(request, visit, 404, "No such incident.")
    return show_incident(request, visit, incident)


def check_owner(owner: str) -> str:
    owner = owner.strip()
    if owner and not USER_NAME.fullmatch(owner):
        raise IncidentError("an owner is a user name (letters, digits and . _ @ -)")
    return owner


def check_team(team: str) -> str:
    team = " ".join(team.split())
    if len(team) > MAX_TEAM_LENGTH or not team.isprintable():
        raise IncidentError(f"a team name has at most {MAX_TEAM_LENGTH} printable characters")
    return team


def check_step(to: str, note: str) -> tuple[Stage | None, str]:
    note = " ".join(note.split())
    if len(note) > MAX_NOTE_LENGTH:
        raise IncidentError(f"a note has at most {MAX_NOTE_LENGTH} characters")
    if to and to not in STAGES:
        raise IncidentError(f"unknown stage; stages are {', '.join(STAGES)}")
    return (cast(Stage, to) if to else None), note


def show_incident(
    request: Request,
    visit: Visit,
    incident: Incident,
    *,
    status: int = 200,
    error: str = "",
    section: str = "",
    form: dict[str, str] | None = None,
) -> Response:
    """The incident page; ``error`` shown at the top, or in ``section`` (``assessment``,
    ``letters``) beside the form that was refused, whose ``form`` values are kept."""
    dash = dashboard_of(request)
    later = [s for s in STAGES if STAGES.index(s) > STAGES.index(incident.stage)]
    context: dict[str, Any] = {
        "incident": incident,
        "later": later,
        "meaning": STAGE_MEANING,
        "users": [u.name for u in dash.store.list_users()],
        "error": error,
        "error_in": section,
        "form": form or {},
        "done": request.query_params.get("done", ""),
        **incident_duties.context(request, incident),
    }
    return dash.render(request, visit, "incident.html", status, **context)


@page("analyst")
def incident_assign(request: Request, visit: Visit) -> Response:
    assert visit.user is not None
    book = _book(request)
    form = visit.form
    incident_id = request.path_params["incident_id"]
    try:
        incident = book.get(incident_id)
        owner = check_owner(form.get("owner", ""))
        team = check_team(form.get("team", ""))
        book.assign(incident_id, owner=owner, team=team, by=visit.user.name)
    except IncidentNotFound:
        return dashboard_of(request).error(request, visit, 404, "No such incident.")
    except IncidentError as exc:
        return show_incident(request, visit, incident, status=400, error=str(exc))
    return RedirectResponse(f"/incidents/{incident_id}?done=assigned", status_code=303)


@page("analyst")
def incident_advance(request: Request, visit: Visit) -> Response:
    assert visit.user is not None
    book = _book(request)
    form = visit.form
    incident_id = request.path_params["incident_id"]
    try:
        incident = book.get(incident_id)
        to, note = check_step(form.get("to", ""), form.get("note", ""))
        book.advance(incident_id, to, by=visit.user.name, note=note)
    except IncidentNotFound:
        return dashboard_of(request).error(request, visit, 404, "No such incident.")
    except IncidentError as exc:
        return show_incident(request, visit, incident, status=400, error=str(exc))
    return RedirectResponse(f"/incidents/{incident_id}?done=advanced", status_code=303)


def routes() -> list[Route]:
    return [
        Route("/incidents", incidents_page),
        Route("/incidents/{incident_id}", incident_page),
        Route("/incidents/{incident_id}/assign", incident_assign, methods=["POST"]),
        Route("/incidents/{incident_id}/advance", incident_advance, methods=["POST"]),
        *incident_duties.routes(),
    ]
