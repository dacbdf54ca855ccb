"""``/api/policy``: the policy in force and its published versions, and a draft's validation.

The same functions as the Policy page (:mod:`.policy_view`): the text of the file the dashboard
was started with and its SHA-256, the versions from the audit log (``policy.publish`` entries
hold their text; ``policy.write`` entries only the hash), and ``validate`` - the policy loader's
own checks, each problem with its key and line. Validating changes nothing, so any role may;
saving and publishing a draft stay admin actions on the page.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .api import _bad, _errors, _json
from .policy_view import MAX_DRAFT_BYTES, current_text, sha256, validate, versions
from .web import Visit, api, dashboard_of


@api("viewer")
def get_policy(request: Request, visit: Visit, body: Any) -> Response:
    dash = dashboard_of(request)
    path = dash.policy_path
    text = current_text(path)
    return JSONResponse(
        {
            "path": None if path is None else str(path),
            "text": text,
            "sha256": sha256(text) if path is not None else None,
            "versions": [
                {
                    "seq": v.entry.seq,
                    "at": v.entry.ts,
                    "by": v.entry.actor,
                    "action": v.entry.action,
                    "sha256": v.sha256,
                    "text": v.text,
                }
                for v in versions(dash.store)
            ],
        }
    )


@api("viewer")
def validate_policy(request: Request, visit: Visit, body: Any) -> Response:
    if not isinstance(body, dict) or not isinstance(body.get("text"), str):
        return _bad('send a JSON object {"text": "<the policy TOML>"}')
    text: str = body["text"].replace("\r\n", "\n")
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError:
        return _bad("the text holds lone surrogates (not valid Unicode)")
    if size > MAX_DRAFT_BYTES:
        return _bad(f"a policy here is at most {MAX_DRAFT_BYTES} bytes")
    policy, issues = validate(text)
    return JSONResponse(
        {
            "ok": policy is not None,
            "sha256": sha256(text),
            "errors": [{"key": i.key_path, "message": i.message, "line": i.line} for i in issues],
        }
    )


def routes() -> list[Route]:
    return [
        Route("/api/policy", get_policy),
        Route("/api/policy/validate", validate_policy, methods=["POST"]),
    ]


_VERSION = {
    "type": "object",
    "required": ["seq", "at", "by", "action", "sha256", "text"],
    "properties": {
        "seq": {"type": "integer"},
        "at": {"type": "number"},
        "by": {"type": "string"},
        "action": {"type": "string", "enum": ["policy.publish", "policy.write"]},
        "sha256": {"type": "string"},
        "text": {"type": ["string", "null"], "description": "null for policy.write (hash only)"},
    },
}


def describe(openapi: dict[str, Any]) -> None:
    """Add these routes to the API's OpenAPI document."""
    openapi["paths"].update(
        {
            "/api/policy": {
                "get": {
                    "summary": "the policy file in force (text, SHA-256) and its versions, newest first",
                    "responses": {
                        "200": _json(
                            {
                                "type": "object",
                                "required": ["path", "text", "sha256", "versions"],
                                "properties": {
                                    "path": {
                                        "type": ["string", "null"],
                                        "description": "null: started without --policy",
                                    },
                                    "text": {"type": "string"},
                                    "sha256": {"type": ["string", "null"]},
                                    "versions": {"type": "array", "items": _VERSION},
                                },
                            },
                            "the policy",
                        ),
                        **_errors(401),
                    },
                }
            },
            "/api/policy/validate": {
                "post": {
                    "summary": "check a draft policy with the loader's own rules (changes nothing)",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["text"],
                                    "properties": {"text": {"type": "string", "description": "the TOML"}},
                                }
                            }
                        },
                    },
                    "responses": {
                        "200": _json(
                            {
                                "type": "object",
                                "required": ["ok", "sha256", "errors"],
                                "properties": {
                                    "ok": {"type": "boolean"},
                                    "sha256": {"type": "string"},
                                    "errors": {
                                        "type": "array",
                                        "items": {
                                            "type": "object",
                                            "required": ["key", "message", "line"],
                                            "properties": {
                                                "key": {
                                                    "type": "string",
                                                    "description": "dotted, with list indices",
                                                },
                                                "message": {"type": "string"},
                                                "line": {"type": ["integer", "null"]},
                                            },
                                        },
                                    },
                                },
                            },
                            "the draft's problems (none when ok)",
                        ),
                        **_errors(400, 401, 403, 413),
                    },
                }
            },
        }
    )
