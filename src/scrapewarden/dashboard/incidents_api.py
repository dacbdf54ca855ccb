"""``/api/incidents``: the Incidents page's data and steps as JSON, for automation.

The same functions as the page: the list filter and the input checks of :mod:`.incidents_view`,
the people, assessment and letter steps of :mod:`.incident_duties`, every change through
:class:`~scrapewarden.incidents.book.IncidentBook` and so audited with the caller as actor.
``/api/incidents/{id}/assess`` records the risk judgement as the page's form does, and
``/api/incidents/{id}/export`` hands out the evidence bundle (a zip of personal data: analysts
only, audited ``incident.export`` as the page's download is; a browser session calling it sends
its CSRF header, since the call writes to the audit log).

Ids in paths may hold anything a client sends, so the routes take the rest of the path,
slashes and control characters included (``{incident_id:anything}``; Starlette's own ``path``
stops at a new line): an unknown id is a JSON 404, never the router's plain-text one.
"""

from __future__ import annotations

from typing import Any

from starlette.convertors import Convertor, register_url_convertor
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..core.incidents import STAGES, Incident, IncidentError, summary
from ..core.letters import LETTER_KINDS, LetterError
from ..incidents.book import IncidentBook, IncidentNotFound
from ..incidents.drafts import Operator
from ..incidents.tracking import LETTER_NAMES, STEPS, letter_rows
from .api import _bad, _errors, _json, _query, _ref
from .incident_duties import (
    EXPORT_ERRORS,
    MAX_JUDGEMENT_NOTE,
    MAX_TEXT,
    DutyInputError,
    check_text,
    judge,
    make_bundle,
    track_letter,
    work,
    zip_download,
)
from .incidents_view import check_owner, check_step, check_team, filtered
from .web import CSRF_HEADER, Visit, api, dashboard_of


class _Anything(Convertor[str]):
    regex = r"[\s\S]*"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("anything", _Anything())


def _book(request: Request) -> IncidentBook:
    dash = dashboard_of(request)
    return IncidentBook(dash.store, clock=dash.clock)


def _text_field(body: dict[str, Any], name: str) -> str:
    value = body.get(name, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise DutyInputError(f"{name} must be a string")
    return value


def _object(body: Any) -> dict[str, Any]:
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise DutyInputError("send a JSON object")
    return body


def incident_summary(incident: Incident) -> dict[str, Any]:
    out = summary(incident)
    out["risk"] = None if incident.risk is None else incident.risk.to_dict()
    out["letters"] = len(incident.letters)
    return out


@api("viewer")
def list_incidents(request: Request, visit: Visit, body: Any) -> Response:
    q = request.query_params
    stage, owner = q.get("stage", ""), q.get("owner", "")
    if stage and stage not in (*STAGES, "active"):
        return _bad(f"stage must be one of {', '.join(STAGES)} or active")
    found = filtered(_book(request).list(), stage=stage, owner=owner)
    return JSONResponse({"incidents": [incident_summary(i) for i in found]})


@api("viewer")
def get_incident(request: Request, visit: Visit, body: Any) -> Response:
    try:
        incident = _book(request).get(request.path_params["incident_id"])
    except IncidentNotFound:
        return _bad("no such incident", 404)
    worked = work(request, incident)
    data = incident.to_dict()
    data.pop("version", None)
    data.pop("letters", None)
    exposure = worked.found.exposure if worked.found is not None else None
    return JSONResponse(
        {
            "incident": data,
            "people": None if exposure is None else exposure.people_count,
            "unknown_records": None if exposure is None else len(exposure.unknown),
            "assessment": None if worked.assessment is None else worked.assessment.to_dict(),
            "assessment_error": worked.error,
            "letters": letter_rows(incident.letters, dashboard_of(request).clock()),
        }
    )


@api("analyst")
def advance_incident(request: Request, visit: Visit, body: Any) -> Response:
    assert visit.user is not None
    incident_id = request.path_params["incident_id"]
    try:
        fields = _object(body)
        to, note = check_step(_text_field(fields, "to"), _text_field(fields, "note"))
        incident = _book(request).advance(incident_id, to, by=visit.user.name, note=note)
    except IncidentNotFound:
        return _bad("no such incident", 404)
    except (DutyInputError, IncidentError) as exc:
        return _bad(str(exc))
    return JSONResponse({"incident": incident_summary(incident)})


@api("analyst")
def assign_incident(request: Request, visit: Visit, body: Any) -> Response:
    assert visit.user is not None
    incident_id = request.path_params["incident_id"]
    try:
        fields = _object(body)
        owner = check_owner(_text_field(fields, "owner")) if "owner" in fields else None
        team = check_team(_text_field(fields, "team")) if "team" in fields else None
        if owner is None and team is None:
            raise DutyInputError("give owner, team or both")
        _book(request).get(incident_id)
        incident = _book(request).assign(incident_id, owner=owner, team=team, by=visit.user.name)
    except IncidentNotFound:
        return _bad("no such incident", 404)
    except (DutyInputError, IncidentError) as exc:
        return _bad(str(exc))
    return JSONResponse({"incident": incident_summary(incident)})


@api("analyst")
def track(request: Request, visit: Visit, body: Any) -> Response:
    """A step on one letter (``sent``, ``replied``, ``confirmed-deletion``), as ``scrapewarden
    incidents letter`` records it."""
    assert visit.user is not None
    incident_id = request.path_params["incident_id"]
    try:
        fields = _object(body)
        _book(request).get(incident_id)
        changed = track_letter(
            request,
            incident_id,
            _text_field(fields, "kind"),
            _text_field(fields, "step"),
            by=visit.user.name,
            which=_text_field(fields, "recipient"),
            note=_text_field(fields, "note"),
        )
    except IncidentNotFound:
        return _bad("no such incident", 404)
    except (DutyInputError, LetterError) as exc:
        return _bad(str(exc))
    incident = _book(request).get(incident_id)
    row = next(
        r for r in letter_rows(incident.letters, dashboard_of(request).clock()) if r["id"] == changed.id
    )
    return JSONResponse({"letter": row}, status_code=201)


@api("analyst")
def assess(request: Request, visit: Visit, body: Any) -> Response:
    """The officer's risk judgement (``high`` or ``low``, with a note) and the assessment made
    under it, as the page's form and ``scrapewarden incidents assess`` record it."""
    assert visit.user is not None
    incident_id = request.path_params["incident_id"]
    try:
        fields = _object(body)
        risk = _text_field(fields, "risk")
        if risk not in ("high", "low"):
            raise DutyInputError("risk must be high or low")
        note = check_text(_text_field(fields, "note"), "note", MAX_JUDGEMENT_NOTE)
        incident = judge(request, incident_id, risk == "high", note, visit.user.name)
    except IncidentNotFound:
        return _bad("no such incident", 404)
    except (DutyInputError, IncidentError) as exc:
        return _bad(str(exc))
    letters = letter_rows(incident.letters, dashboard_of(request).clock())
    return JSONResponse({"incident": incident_summary(incident), "letters": letters})


@api("analyst")
def export(request: Request, visit: Visit, body: Any) -> Response:
    """The evidence bundle (zip), as the page's download."""
    assert visit.user is not None
    dash = dashboard_of(request)
    if not visit.via_token and not dash.codec.csrf_ok(visit.session, request.headers.get(CSRF_HEADER)):
        detail = f"missing or wrong {CSRF_HEADER} header (the export is audited)"
        return JSONResponse({"error": "forbidden", "detail": detail}, 403)
    q = request.query_params
    try:
        incident = _book(request).get(request.path_params["incident_id"])
        operator = Operator(
            check_text(q.get("operator", ""), "operator"),
            check_text(q.get("operator_contact", ""), "operator contact"),
        )
    except IncidentNotFound:
        return _bad("no such incident", 404)
    except DutyInputError as exc:
        return _bad(str(exc))
    try:
        name, bundle = make_bundle(request, incident, operator, by=visit.user.name)
    except EXPORT_ERRORS as exc:
        return JSONResponse({"error": "export_failed", "detail": f"the bundle could not be made: {exc}"}, 500)
    return zip_download(name, bundle)


def routes() -> list[Route]:
    return [
        Route("/api/incidents", list_incidents),
        Route("/api/incidents/{incident_id:anything}/assess", assess, methods=["POST"]),
        Route("/api/incidents/{incident_id:anything}/export", export),
        Route("/api/incidents/{incident_id:anything}/advance", advance_incident, methods=["POST"]),
        Route("/api/incidents/{incident_id:anything}/assign", assign_incident, methods=["POST"]),
        Route("/api/incidents/{incident_id:anything}/letters", track, methods=["POST"]),
        Route("/api/incidents/{incident_id:anything}", get_incident),
    ]


# -- the OpenAPI part ------------------------------------------------------------------------------

_NUM_OR_NULL = {"type": ["number", "null"]}
_SUMMARY = {
    "type": "object",
    "required": ["id", "title", "stage", "owner", "team", "opened_at", "records", "letters"],
    "properties": {
        "id": {"type": "string"},
        "title": {"type": "string"},
        "stage": {"type": "string", "enum": list(STAGES)},
        "owner": {"type": "string"},
        "team": {"type": "string"},
        "opened_at": {"type": "number"},
        "first_seen": {"type": "number"},
        "last_seen": {"type": "number"},
        "addresses": {"type": "integer"},
        "accounts": {"type": "integer"},
        "records": {"type": "integer"},
        "detections": {"type": "integer"},
        "risk": {"type": ["object", "null"]},
        "letters": {"type": "integer", "description": "letters tracked"},
    },
}
_LETTER = {
    "type": "object",
    "required": ["id", "kind", "recipient", "state", "send_by", "sent_at", "reply_due_at", "overdue"],
    "properties": {
        "id": {"type": "string"},
        "incident_id": {"type": "string"},
        "kind": {"type": "string", "enum": list(LETTER_KINDS)},
        "recipient": {"type": "string"},
        "created_at": {"type": "number"},
        "send_by": _NUM_OR_NULL,
        "sent_at": _NUM_OR_NULL,
        "sent_by": {"type": "string"},
        "reply_due_at": _NUM_OR_NULL,
        "replied_at": _NUM_OR_NULL,
        "reply_note": {"type": "string"},
        "reminded_at": _NUM_OR_NULL,
        "state": {"type": "string"},
        "overdue": {
            "type": ["object", "null"],
            "description": "why it is overdue: not sent by send_by, or unanswered by reply_due_at",
        },
    },
}
_DETAIL = {
    "type": "object",
    "required": ["incident", "people", "unknown_records", "assessment", "assessment_error", "letters"],
    "properties": {
        "incident": {
            "type": "object",
            "required": ["id", "title", "stage", "steps", "actors", "records", "records_count", "samples"],
            "description": "the evidence: actors (as stored), detectors, samples, records",
        },
        "people": {"type": ["integer", "null"], "description": "people affected (null: lookup failed)"},
        "unknown_records": {"type": ["integer", "null"]},
        "assessment": {
            "type": ["object", "null"],
            "description": "the breach assessment (as `scrapewarden incidents assess --json`)",
        },
        "assessment_error": {"type": "string", "description": "why the assessment could not be made"},
        "letters": {"type": "array", "items": _ref("Letter")},
    },
}
_ID = {"name": "incident_id", "in": "path", "required": True, "schema": {"type": "string"}}


def _body(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return {"required": bool(required), "content": {"application/json": {"schema": schema}}}


def _incident_out(description: str) -> dict[str, Any]:
    return _json(
        {"type": "object", "required": ["incident"], "properties": {"incident": _ref("IncidentSummary")}},
        description,
    )


def describe(openapi: dict[str, Any]) -> None:
    """Add these routes to the API's OpenAPI document."""
    openapi["components"]["schemas"].update({"IncidentSummary": _SUMMARY, "Letter": _LETTER})
    text = {"type": "string", "maxLength": MAX_TEXT}
    openapi["paths"].update(
        {
            "/api/incidents": {
                "get": {
                    "summary": "incidents, newest first",
                    "parameters": [
                        _query(
                            "stage", {"type": "string", "enum": [*STAGES, "active"]}, "active: not closed"
                        ),
                        _query("owner", {"type": "string"}, "a user name; - for nobody yet"),
                    ],
                    "responses": {
                        "200": _json(
                            {
                                "type": "object",
                                "required": ["incidents"],
                                "properties": {
                                    "incidents": {"type": "array", "items": _ref("IncidentSummary")}
                                },
                            },
                            "the incidents",
                        ),
                        **_errors(400, 401),
                    },
                }
            },
            "/api/incidents/{incident_id}": {
                "get": {
                    "summary": "one incident: evidence, people affected, breach assessment, letters",
                    "parameters": [_ID],
                    "responses": {"200": _json(_DETAIL, "the incident"), **_errors(401, 404)},
                }
            },
            "/api/incidents/{incident_id}/advance": {
                "post": {
                    "summary": "move to the next stage, or a later one (analyst; audited incident.advance)",
                    "parameters": [_ID],
                    "requestBody": _body(
                        {
                            "to": {"type": "string", "enum": list(STAGES)},
                            "note": {"type": "string", "maxLength": 1000},
                        }
                    ),
                    "responses": {
                        "200": _incident_out("the incident after the step"),
                        **_errors(400, 401, 403, 404, 413),
                    },
                }
            },
            "/api/incidents/{incident_id}/assign": {
                "post": {
                    "summary": "set the owner and/or team (analyst; audited incident.assign)",
                    "parameters": [_ID],
                    "requestBody": _body(
                        {
                            "owner": {"type": "string", "description": "a user name"},
                            "team": {"type": "string"},
                        }
                    ),
                    "responses": {"200": _incident_out("the incident"), **_errors(400, 401, 403, 404, 413)},
                }
            },
            "/api/incidents/{incident_id}/assess": {
                "post": {
                    "summary": "record the risk judgement and the assessment made under it (analyst; "
                    "audited incident.assess); the letters it calls for are tracked from then on",
                    "parameters": [_ID],
                    "requestBody": _body(
                        {
                            "risk": {
                                "type": "string",
                                "enum": ["high", "low"],
                                "description": "high: notify the people; low: below the high-risk threshold",
                            },
                            "note": {"type": "string", "maxLength": MAX_JUDGEMENT_NOTE},
                        },
                        ["risk"],
                    ),
                    "responses": {
                        "200": _json(
                            {
                                "type": "object",
                                "required": ["incident", "letters"],
                                "properties": {
                                    "incident": _ref("IncidentSummary"),
                                    "letters": {"type": "array", "items": _ref("Letter")},
                                },
                            },
                            "the incident with its judgement, and its letters",
                        ),
                        **_errors(400, 401, 403, 404, 413),
                    },
                }
            },
            "/api/incidents/{incident_id}/export": {
                "get": {
                    "summary": "the evidence bundle, a zip of personal data (analyst; audited "
                    "incident.export; a session call needs the x-csrf-token header)",
                    "parameters": [
                        _ID,
                        _query("operator", text, "the operator's name, for the letters"),
                        _query("operator_contact", text, "the operator's address"),
                    ],
                    "responses": {
                        "200": {
                            "description": "the bundle (`scrapewarden incidents verify-bundle` checks it)",
                            "content": {
                                "application/zip": {"schema": {"type": "string", "format": "binary"}}
                            },
                        },
                        **_errors(400, 401, 403, 404),
                        "500": _json(_ref("Error"), "the bundle could not be made"),
                    },
                }
            },
            "/api/incidents/{incident_id}/letters": {
                "post": {
                    "summary": "record a step on a letter (analyst; audited letter.sent, letter.replied or "
                    "deletion.confirmed); a cease-and-desist or deletion demand marked sent is given the "
                    "policy's response_days / deletion_days",
                    "parameters": [_ID],
                    "requestBody": _body(
                        {
                            "kind": {"type": "string", "enum": list(LETTER_NAMES)},
                            "step": {"type": "string", "enum": list(STEPS)},
                            "recipient": {
                                **text,
                                "description": "which letter when there are several, or to whom",
                            },
                            "note": text,
                        },
                        ["kind", "step"],
                    ),
                    "responses": {
                        "201": _json(
                            {
                                "type": "object",
                                "required": ["letter"],
                                "properties": {"letter": _ref("Letter")},
                            },
                            "the letter after the step",
                        ),
                        **_errors(400, 401, 403, 404, 413),
                    },
                }
            },
        }
    )
