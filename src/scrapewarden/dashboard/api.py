"""The JSON API under ``/api/``, and the OpenAPI document that describes it.

Same users and roles as the pages. Automation sends ``Authorization: Bearer swd_…`` (tokens
from ``scrapewarden users token NAME``); a logged-in browser may call it with its session
cookie, plus the ``X-CSRF-Token`` header on state changes. ``OPENAPI`` is written by hand and
kept true by a schemathesis run against the live app (tests/dashboard/test_api_schema.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..state.base import BAN_KINDS, ROLES, Event
from . import allows_view, audit_view, rates_view, views
from .bans import (
    MAX_REASON_LENGTH,
    MAX_TTL_SECONDS,
    BanInputError,
    ban_json,
    check_target,
    order_from_json,
)
from .live_metrics import live_figure
from .overview_figures import OVERVIEW_SCHEMA, overview_json
from .web import Visit, api, dashboard_of
from .web import bad_request as _bad

if TYPE_CHECKING:
    from .app import Dashboard

MAX_PAGE = 1000


def _int(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BanInputError(f"{name} must be an integer") from None
    if not low <= value <= high:
        raise BanInputError(f"{name} must be between {low} and {high}")
    return value


def event_json(event: Event) -> dict[str, Any]:
    return {
        "id": event.id,
        "ts": event.ts,
        "action": event.action,
        "enforced": event.enforced,
        "score": event.score,
        "ip": event.ip,
        "method": event.method,
        "path": event.path,
        "user_agent": event.user_agent,
        "account": event.account,
        "session": event.session,
        "fingerprint": event.fingerprint,
        "record": event.record,
        "reasons": list(event.reasons),
    }


@api("viewer")
def me(request: Request, visit: Visit, body: Any) -> Response:
    assert visit.user is not None
    return JSONResponse({"name": visit.user.name, "role": visit.user.role})


@api("viewer")
def summary(request: Request, visit: Visit, body: Any) -> Response:
    dash: Dashboard = dashboard_of(request)
    try:
        hours = _int(request, "hours", 24, 1, 24 * 31)
    except BanInputError as exc:
        return _bad(str(exc))
    data = views.overview(dash.store, now=dash.clock(), hours=hours)
    out = data.summary.as_dict()
    out["hours"] = hours
    out["truncated"] = data.truncated
    out["top_actors"] = {
        kind: [{"key": r.key, "events": r.events, "last_ts": r.last_ts, "worst": r.worst} for r in rows]
        for kind, rows in data.actors.items()
    }
    out.update(overview_json(data, live_figure(dash.sampler.current())))
    return JSONResponse(out)


@api("viewer")
def events(request: Request, visit: Visit, body: Any) -> Response:
    dash: Dashboard = dashboard_of(request)
    try:
        since = _int(request, "since_id", 0, 0, 2**62)
        limit = _int(request, "limit", 100, 1, MAX_PAGE)
    except BanInputError as exc:
        return _bad(str(exc))
    page = dash.store.events(since_id=since, limit=limit)
    next_id = (page[-1].id or since) if page else since
    return JSONResponse({"events": [event_json(e) for e in page], "next_since_id": next_id})


@api("viewer")
def actor(request: Request, visit: Visit, body: Any) -> Response:
    dash: Dashboard = dashboard_of(request)
    try:
        limit = _int(request, "limit", 100, 1, MAX_PAGE)
        search = views.search_keys(
            request.query_params.get("kind", ""),
            request.query_params.get("q", ""),
            dash.warden.pseudonymizer,
            v4_prefix=dash.warden.policy.network.ipv4_network_prefix,
        )
    except (BanInputError, views.SearchError) as exc:
        return _bad(str(exc))
    view = views.actor(dash.store, search, limit=limit)
    now = dash.clock()
    return JSONResponse(
        {
            "kind": search.kind,
            "query": search.typed,
            "pseudonymised": search.pseudonymised,
            "total": view.total,
            "actions": dict(view.actions),
            "first_ts": view.first_ts,
            "last_ts": view.last_ts,
            "events": [event_json(e) for e in view.events],
            "bans": [ban_json(b, now) for b in view.bans],
            "allows": [allows_view.allow_json(a, now) for a in view.allows],
        }
    )


@api("viewer")
def list_bans(request: Request, visit: Visit, body: Any) -> Response:
    dash: Dashboard = dashboard_of(request)
    q = request.query_params
    kind = q.get("kind", "")
    if kind and kind not in BAN_KINDS:
        return _bad(f"kind must be one of {', '.join(BAN_KINDS)}")
    now = dash.clock()
    everything = q.get("all", "false").lower() in ("1", "true", "yes")
    listed = dash.store.list_bans(None if everything else now)
    shown = views.filter_bans(listed, text=q.get("q", ""), kind=kind, source=q.get("source", ""))
    return JSONResponse({"bans": [ban_json(b, now) for b in shown]})


@api("analyst")
def add_ban(request: Request, visit: Visit, body: Any) -> Response:
    dash: Dashboard = dashboard_of(request)
    try:
        order = order_from_json(body, until="forever")
    except BanInputError as exc:
        return _bad(str(exc))
    assert visit.user is not None
    user = visit.user.name
    stored = dash.warden.ban(order.kind, order.value, ttl=order.ttl, reason=order.signed(user), by=user)
    return JSONResponse(ban_json(stored, dash.clock()), status_code=201)


@api("analyst")
def lift_ban(request: Request, visit: Visit, body: Any) -> Response:
    dash: Dashboard = dashboard_of(request)
    try:
        kind, value = check_target(
            request.query_params.get("kind", ""), request.query_params.get("value", "")
        )
    except BanInputError as exc:
        return _bad(str(exc))
    if not dash.store.remove_ban(kind, value):
        return _bad("no such ban", 404)
    assert visit.user is not None
    audit_view.write(dash.store, dash.clock(), visit.user.name, "ban.remove", f"{kind}:{value}")
    dash.warden.engine.bans.remove(kind, value)
    return Response(status_code=204)


@api("admin")
def users(request: Request, visit: Visit, body: Any) -> Response:
    dash: Dashboard = dashboard_of(request)
    return JSONResponse(
        {"users": [{"name": u.name, "role": u.role, "created": u.created} for u in dash.store.list_users()]}
    )


async def openapi(request: Request) -> Response:
    # Public: it describes the API, it holds no data.
    return JSONResponse(OPENAPI)


def routes() -> list[Route]:
    return [
        Route("/api/openapi.json", openapi),
        Route("/api/me", me),
        Route("/api/summary", summary),
        Route("/api/events", events),
        Route("/api/actors", actor),
        Route("/api/bans", list_bans, methods=["GET"]),
        Route("/api/bans", add_ban, methods=["POST"]),
        Route("/api/bans", lift_ban, methods=["DELETE"]),
        Route("/api/users", users),
        *incidents_api.routes(),
        *policy_api.routes(),
    ]


# -- the OpenAPI document -----------------------------------------------------------------------

_ERROR = {
    "type": "object",
    "required": ["error", "detail"],
    "properties": {"error": {"type": "string"}, "detail": {"type": "string"}},
}
_NULLABLE_STR = {"type": ["string", "null"]}
_BAN = {
    "type": "object",
    "required": ["kind", "value", "created", "expires", "active", "reason", "offences", "source"],
    "properties": {
        "kind": {"type": "string", "enum": list(BAN_KINDS)},
        "value": {"type": "string"},
        "created": {"type": "number"},
        "expires": {"type": ["number", "null"]},
        "active": {"type": "boolean"},
        "reason": {"type": "string"},
        "offences": {"type": "integer"},
        "source": {"type": "string"},
    },
}
_EVENT = {
    "type": "object",
    "required": ["id", "ts", "action", "enforced", "score", "ip", "method", "path", "reasons"],
    "properties": {
        "id": {"type": ["integer", "null"]},
        "ts": {"type": "number"},
        "action": {"type": "string"},
        "enforced": {"type": "boolean"},
        "score": {"type": "number"},
        "ip": {"type": "string", "description": "a keyed pseudonym (ip~…) when the policy pseudonymises"},
        "method": {"type": "string"},
        "path": {"type": "string"},
        "user_agent": {"type": "string"},
        "account": _NULLABLE_STR,
        "session": _NULLABLE_STR,
        "fingerprint": {"type": "string"},
        "record": _NULLABLE_STR,
        "reasons": {"type": "array", "items": {"type": "string"}},
    },
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Any]:
    text = {
        400: "bad input",
        401: "no valid session or bearer token",
        403: "role too low, or a session call without its CSRF header",
        404: "not found",
        413: "body larger than 64 KiB",
    }
    return {str(code): _json(_ref("Error"), text[code]) for code in codes}


def _query(
    name: str, schema: dict[str, Any], description: str = "", required: bool = False
) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "schema": schema, "description": description}


OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "scrapewarden dashboard API",
        "version": "1",
        "description": "Events, actors and bans from the scrapewarden state store.",
    },
    "components": {
        "securitySchemes": {
            "bearer": {
                "type": "http",
                "scheme": "bearer",
                "description": "a token from `scrapewarden users token`",
            },
            "session": {"type": "apiKey", "in": "cookie", "name": "sw_dash"},
        },
        "schemas": {"Error": _ERROR, "Ban": _BAN, "Event": _EVENT},
    },
    "security": [{"bearer": []}, {"session": []}],
    "paths": {
        "/api/me": {
            "get": {
                "summary": "who the caller is",
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["name", "role"],
                            "properties": {"name": {"type": "string"}, "role": {"enum": list(ROLES)}},
                        },
                        "the caller",
                    ),
                    **_errors(401),
                },
            }
        },
        "/api/summary": {
            "get": {
                "summary": "decisions by action, challenge solve rate and top actors over the last hours",
                "parameters": [_query("hours", {"type": "integer", "minimum": 1, "maximum": 744})],
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "required": [
                                "events",
                                "actions",
                                "challenges",
                                "passed",
                                "solve_rate",
                                "top_actors",
                            ],
                            "properties": {
                                "events": {"type": "integer"},
                                "hours": {"type": "integer"},
                                "first_ts": {"type": ["number", "null"]},
                                "last_ts": {"type": ["number", "null"]},
                                "actions": {"type": "object", "additionalProperties": {"type": "integer"}},
                                "challenges": {"type": "integer"},
                                "passed": {"type": "integer"},
                                "solve_rate": {"type": ["number", "null"]},
                                "truncated": {"type": "boolean"},
                                "top_actors": {"type": "object"},
                                **OVERVIEW_SCHEMA,
                            },
                        },
                        "the summary",
                    ),
                    **_errors(400, 401),
                },
            }
        },
        "/api/events": {
            "get": {
                "summary": "recorded decisions, oldest first, after an id",
                "parameters": [
                    _query("since_id", {"type": "integer", "minimum": 0, "maximum": 2**62}),
                    _query("limit", {"type": "integer", "minimum": 1, "maximum": MAX_PAGE}),
                ],
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["events", "next_since_id"],
                            "properties": {
                                "events": {"type": "array", "items": _ref("Event")},
                                "next_since_id": {"type": "integer"},
                            },
                        },
                        "a page of events",
                    ),
                    **_errors(400, 401),
                },
            }
        },
        "/api/actors": {
            "get": {
                "summary": "one actor's recorded decisions (what is typed is pseudonymised like the events)",
                "parameters": [
                    _query("kind", {"type": "string", "enum": list(views.ACTOR_KINDS)}, required=True),
                    _query(
                        "q", {"type": "string"}, "an address, CIDR, account, session or fingerprint", True
                    ),
                    _query("limit", {"type": "integer", "minimum": 1, "maximum": MAX_PAGE}),
                ],
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "required": [
                                "kind",
                                "query",
                                "pseudonymised",
                                "total",
                                "actions",
                                "events",
                                "bans",
                                "allows",
                            ],
                            "properties": {
                                "kind": {"type": "string"},
                                "query": {"type": "string"},
                                "pseudonymised": {"type": "boolean"},
                                "total": {"type": "integer"},
                                "actions": {"type": "object", "additionalProperties": {"type": "integer"}},
                                "first_ts": {"type": ["number", "null"]},
                                "last_ts": {"type": ["number", "null"]},
                                "events": {"type": "array", "items": _ref("Event")},
                                "bans": {"type": "array", "items": _ref("Ban")},
                                "allows": {
                                    "type": "array",
                                    "items": _ref("Allow"),
                                    "description": "the operator allow on this actor, in force or not",
                                },
                            },
                        },
                        "the actor",
                    ),
                    **_errors(400, 401),
                },
            }
        },
        "/api/bans": {
            "get": {
                "summary": "bans, active ones unless all=true",
                "parameters": [
                    _query("all", {"type": "boolean"}),
                    _query("kind", {"type": "string", "enum": list(BAN_KINDS)}),
                    _query("source", {"type": "string"}),
                    _query("q", {"type": "string"}, "text in the value or reason"),
                ],
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["bans"],
                            "properties": {"bans": {"type": "array", "items": _ref("Ban")}},
                        },
                        "the bans",
                    ),
                    **_errors(400, 401),
                },
            },
            "post": {
                "summary": "ban an actor (analyst); running Wardens on the same store enforce it within 2 s",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["kind", "value"],
                                "properties": {
                                    "kind": {"type": "string", "enum": list(BAN_KINDS)},
                                    "value": {"type": "string"},
                                    "ttl_seconds": {
                                        "type": ["number", "null"],
                                        "minimum": 0,
                                        "maximum": MAX_TTL_SECONDS,
                                        "description": "0 or null: until lifted",
                                    },
                                    "reason": {"type": "string", "maxLength": MAX_REASON_LENGTH},
                                },
                            }
                        }
                    },
                },
                "responses": {"201": _json(_ref("Ban"), "the stored ban"), **_errors(400, 401, 403, 413)},
            },
            "delete": {
                "summary": "lift a ban (analyst)",
                "parameters": [
                    _query("kind", {"type": "string", "enum": list(BAN_KINDS)}, required=True),
                    _query("value", {"type": "string"}, required=True),
                ],
                "responses": {"204": {"description": "lifted"}, **_errors(400, 401, 403, 404, 413)},
            },
        },
        "/api/users": {
            "get": {
                "summary": "dashboard users (admin)",
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["users"],
                            "properties": {
                                "users": {
                                    "type": "array",
                                    "items": {
                                        "type": "object",
                                        "required": ["name", "role", "created"],
                                        "properties": {
                                            "name": {"type": "string"},
                                            "role": {"enum": list(ROLES)},
                                            "created": {"type": "number"},
                                        },
                                    },
                                }
                            },
                        },
                        "the users",
                    ),
                    **_errors(401, 403),
                },
            }
        },
    },
}

_AUDIT_ENTRY = {
    "type": "object",
    "required": ["seq", "ts", "actor", "action", "target", "details", "prev_hash", "hash"],
    "properties": {
        "seq": {"type": "integer"},
        "ts": {"type": "number"},
        "actor": {"type": "string"},
        "action": {"type": "string"},
        "target": {"type": "string"},
        "details": {"type": "object"},
        "prev_hash": {"type": "string"},
        "hash": {"type": "string"},
    },
}
_VERIFICATION = {
    "type": "object",
    "required": ["ok", "verified", "head_seq", "head", "broken_seq", "problem"],
    "properties": {
        "ok": {"type": "boolean"},
        "verified": {"type": "integer"},
        "head_seq": {"type": "integer"},
        "head": {"type": "string"},
        "broken_seq": {"type": ["integer", "null"]},
        "problem": {"type": "string"},
    },
}
OPENAPI["components"]["schemas"]["AuditEntry"] = _AUDIT_ENTRY
OPENAPI["paths"]["/api/audit"] = {
    "get": {
        "summary": "the audit log, newest first, with the whole chain's verification",
        "parameters": [
            _query("actor", {"type": "string"}, "only entries by this actor (exact)"),
            _query("action", {"type": "string"}, "only actions starting with this (ban., ban.add)"),
            _query("page", {"type": "integer", "minimum": 1}, "1 is the newest page"),
            _query("limit", {"type": "integer", "minimum": 1, "maximum": 1000}, "entries per page"),
        ],
        "responses": {
            "200": _json(
                {
                    "type": "object",
                    "required": ["verification", "total", "matched", "page", "pages", "entries"],
                    "properties": {
                        "verification": _VERIFICATION,
                        "total": {"type": "integer"},
                        "matched": {"type": "integer"},
                        "page": {"type": "integer"},
                        "pages": {"type": "integer"},
                        "entries": {"type": "array", "items": _ref("AuditEntry")},
                    },
                },
                "one page of entries",
            ),
            **_errors(400, 401),
        },
    }
}

# Incidents and policy: their own modules, which use the helpers above (hence imported last).
from . import incidents_api, policy_api  # noqa: E402

incidents_api.describe(OPENAPI)
policy_api.describe(OPENAPI)
allows_view.describe(OPENAPI)
rates_view.describe(OPENAPI)
