"""Operator allows on the dashboard: the actor page's "Allow" form, lifting from the actor and
Bans pages, and ``/api/allows`` (GET, POST, DELETE) with its part of the OpenAPI document.

Same rules as bans (see :mod:`.bans`): analysts allow and lift, viewers only look; every form
carries its CSRF token (checked by :func:`.web.page`); a page opened by pseudonym needs the
real value typed, and it must pseudonymise to the actor on the page; every change is written
to the audit log as ``allow.add`` / ``allow.remove`` with the user as actor (by
:meth:`Warden.allow` and :meth:`Warden.lift_allow`). A Warden serving the site on the same store
picks an allow up, or drops it, with its next ban reload (within two seconds).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from ..state.base import BAN_KINDS, Allow
from ..state.errors import StateError
from .bans import (
    MAX_REASON_LENGTH,
    MAX_TTL_SECONDS,
    BanInputError,
    check_target,
    order_from_form,
    order_from_json,
)
from .web import Visit, api, dashboard_of, page, safe_next
from .web import bad_request as _bad


def allow_json(allow: Allow, now: float) -> dict[str, Any]:
    return {
        "kind": allow.kind,
        "value": allow.value,
        "created": allow.created,
        "expires": allow.expires,
        "active": allow.active(now),
        "reason": allow.reason,
        "by": allow.by,
    }


# -- the pages --------------------------------------------------------------------------------------


@page("analyst")
def actor_allow(request: Request, visit: Visit) -> Response:
    dash = dashboard_of(request)
    back = {"kind": visit.form.get("kind", ""), "q": visit.form.get("q", "")}
    try:
        order = order_from_form(visit.form, dash.warden.pseudonymizer)
    except BanInputError as exc:
        return dash.error(request, visit, 400, str(exc))
    assert visit.user is not None
    user = visit.user.name
    try:
        dash.warden.allow(order.kind, order.value, ttl=order.ttl, reason=order.signed(user), by=user)
    except StateError as exc:  # Redis away: an allow is never queued to take effect later
        return dash.error(request, visit, 503, f"The allow was not stored: {exc}")
    return RedirectResponse("/actors?" + urlencode({**back, "done": "allowed"}), status_code=303)


@page("analyst")
def allows_lift(request: Request, visit: Visit) -> Response:
    dash = dashboard_of(request)
    form = visit.form
    try:
        kind, value = check_target(form.get("kind", ""), form.get("value", ""))
    except BanInputError as exc:
        return dash.error(request, visit, 400, str(exc))
    assert visit.user is not None
    try:
        removed = dash.warden.lift_allow(kind, value, by=visit.user.name)
    except StateError as exc:
        return dash.error(request, visit, 503, f"The allow was not lifted: {exc}")
    back = safe_next(form.get("back")) if form.get("back") else "/bans"
    sep = "&" if "?" in back else "?"
    done = "allow-lifted" if removed else "allow-not-found"
    return RedirectResponse(f"{back}{sep}done={done}", status_code=303)


def in_force(request: Request) -> list[Allow]:
    """The allows in force, newest first (the Bans page's section)."""
    dash = dashboard_of(request)
    return list(reversed(dash.store.list_allows(dash.clock())))


# -- the JSON API -------------------------------------------------------------------------------------


@api("viewer")
def list_allows(request: Request, visit: Visit, body: Any) -> Response:
    dash = dashboard_of(request)
    q = request.query_params
    kind = q.get("kind", "")
    if kind and kind not in BAN_KINDS:
        return _bad(f"kind must be one of {', '.join(BAN_KINDS)}")
    now = dash.clock()
    everything = q.get("all", "false").lower() in ("1", "true", "yes")
    listed = dash.store.list_allows(None if everything else now)
    return JSONResponse({"allows": [allow_json(a, now) for a in listed if not kind or a.kind == kind]})


@api("analyst")
def add_allow(request: Request, visit: Visit, body: Any) -> Response:
    dash = dashboard_of(request)
    try:
        order = order_from_json(body, until="until lifted")
    except BanInputError as exc:
        return _bad(str(exc))
    assert visit.user is not None
    user = visit.user.name
    try:
        stored = dash.warden.allow(order.kind, order.value, ttl=order.ttl, reason=order.signed(user), by=user)
    except StateError as exc:
        return JSONResponse({"error": "unavailable", "detail": str(exc)}, 503)
    return JSONResponse(allow_json(stored, dash.clock()), status_code=201)


@api("analyst")
def lift_allow(request: Request, visit: Visit, body: Any) -> Response:
    dash = dashboard_of(request)
    try:
        kind, value = check_target(
            request.query_params.get("kind", ""), request.query_params.get("value", "")
        )
    except BanInputError as exc:
        return _bad(str(exc))
    assert visit.user is not None
    try:
        removed = dash.warden.lift_allow(kind, value, by=visit.user.name)
    except StateError as exc:
        return JSONResponse({"error": "unavailable", "detail": str(exc)}, 503)
    if not removed:
        return _bad("no such allow", 404)
    return Response(status_code=204)


def routes() -> list[Route]:
    return [
        Route("/actors/allow", actor_allow, methods=["POST"]),
        Route("/allows/lift", allows_lift, methods=["POST"]),
        Route("/api/allows", list_allows, methods=["GET"]),
        Route("/api/allows", add_allow, methods=["POST"]),
        Route("/api/allows", lift_allow, methods=["DELETE"]),
    ]


# -- the OpenAPI document's part ------------------------------------------------------------------------


def describe(openapi: dict[str, Any]) -> None:
    """Add ``/api/allows`` and the ``Allow`` schema to the API's OpenAPI document."""

    def ref(name: str) -> dict[str, str]:
        return {"$ref": f"#/components/schemas/{name}"}

    def json_body(schema: dict[str, Any], description: str) -> dict[str, Any]:
        return {"description": description, "content": {"application/json": {"schema": schema}}}

    texts = {
        400: "bad input",
        401: "no valid session or bearer token",
        403: "role too low, or a session call without its CSRF header",
        404: "not found",
        413: "body larger than 64 KiB",
        503: "the state store cannot be reached: nothing was changed",
    }

    def errors(*codes: int) -> dict[str, Any]:
        return {str(code): json_body(ref("Error"), texts[code]) for code in codes}

    def query(name: str, schema: dict[str, Any], required: bool = False) -> dict[str, Any]:
        return {"name": name, "in": "query", "required": required, "schema": schema}

    kinds = {"type": "string", "enum": list(BAN_KINDS)}
    openapi["components"]["schemas"]["Allow"] = {
        "type": "object",
        "required": ["kind", "value", "created", "expires", "active", "reason", "by"],
        "properties": {
            "kind": kinds,
            "value": {"type": "string"},
            "created": {"type": "number"},
            "expires": {"type": ["number", "null"]},
            "active": {"type": "boolean"},
            "reason": {"type": "string"},
            "by": {"type": "string", "description": "the user who allowed it"},
        },
    }
    openapi["paths"]["/api/allows"] = {
        "get": {
            "summary": "operator allows, those in force unless all=true",
            "parameters": [query("all", {"type": "boolean"}), query("kind", kinds)],
            "responses": {
                "200": json_body(
                    {
                        "type": "object",
                        "required": ["allows"],
                        "properties": {"allows": {"type": "array", "items": ref("Allow")}},
                    },
                    "the allows",
                ),
                **errors(400, 401),
            },
        },
        "post": {
            "summary": (
                "allow an actor (analyst): its requests are allowed whatever bans and detectors "
                "say, and still counted; running Wardens on the same store pick it up within 2 s"
            ),
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["kind", "value"],
                            "properties": {
                                "kind": kinds,
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
            "responses": {
                "201": json_body(ref("Allow"), "the stored allow"),
                **errors(400, 401, 403, 413, 503),
            },
        },
        "delete": {
            "summary": "lift an operator allow (analyst)",
            "parameters": [query("kind", kinds, True), query("value", {"type": "string"}, True)],
            "responses": {"204": {"description": "lifted"}, **errors(400, 401, 403, 404, 413, 503)},
        },
    }
