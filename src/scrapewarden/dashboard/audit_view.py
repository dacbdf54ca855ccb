"""The audit log as the dashboard shows it: verification, filters and pages, and the entries the
dashboard's own state changes write.

Verification is :func:`scrapewarden.state.audit.verify_store`, the code behind
``scrapewarden audit verify``, so the page and the command always agree. Entries are read
whole (every store pages them by sequence number only); a filter and a page are cut from that.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..core.audit import GENESIS, AuditEntry, AuditRecord, Verification
from ..state.audit import entries, verify_store
from ..state.base import StateStore
from .web import Visit, api, dashboard_of, page

PAGE_SIZE = 50
MAX_FILTER_LENGTH = 200


@dataclass(frozen=True, slots=True)
class AuditPage:
    verification: Verification
    entries: list[AuditEntry]
    """This page's entries, newest first."""
    matched: int
    """Entries the filters kept (all pages)."""
    total: int
    page: int
    pages: int
    actors: list[str]
    actions: list[str]

    @property
    def head(self) -> str:
        return self.verification.head if self.verification.verified else GENESIS


def read(
    store: StateStore, *, actor: str = "", action: str = "", page: int = 1, size: int = PAGE_SIZE
) -> AuditPage:
    """Page ``page`` (1 = newest) of the entries made by ``actor`` whose action starts with
    ``action`` (both optional, exact actor), with the whole chain's verification."""
    verification = verify_store(store)
    every = list(entries(store))
    actor, action = actor.strip()[:MAX_FILTER_LENGTH], action.strip()[:MAX_FILTER_LENGTH]
    kept = [
        e for e in every if (not actor or e.actor == actor) and (not action or e.action.startswith(action))
    ]
    kept.reverse()
    pages = max(1, -(-len(kept) // size))
    page = min(max(1, page), pages)
    return AuditPage(
        verification=verification,
        entries=kept[(page - 1) * size : page * size],
        matched=len(kept),
        total=len(every),
        page=page,
        pages=pages,
        actors=sorted({e.actor for e in every}),
        actions=sorted({e.action for e in every}),
    )


def verification_json(v: Verification) -> dict[str, Any]:
    return {
        "ok": v.ok,
        "verified": v.verified,
        "head_seq": v.head_seq,
        "head": v.head if v.verified else GENESIS,
        "broken_seq": v.broken_seq,
        "problem": v.problem,
    }


def write(store: StateStore, now: float, who: str, action: str, target: str, **details: Any) -> None:
    """One entry for a change made on the dashboard, ``who`` being the logged-in user (the same
    ``StateStore.append_audit`` the ``scrapewarden ban``/``users`` commands call)."""
    store.append_audit(AuditRecord(now, who, action, target, details))


# -- the page and the API route -------------------------------------------------------------------


def _page_number(raw: str | None) -> int:
    try:
        return max(1, int(raw or "1"))
    except ValueError:
        return 1


@page("viewer")
def audit_page(request: Request, visit: Visit) -> Response:
    dash = dashboard_of(request)
    q = request.query_params
    data = read(
        dash.store, actor=q.get("actor", ""), action=q.get("action", ""), page=_page_number(q.get("page"))
    )
    return dash.render(
        request, visit, "audit.html", data=data, actor=q.get("actor", ""), action=q.get("action", "")
    )


@api("viewer")
def audit_api(request: Request, visit: Visit, body: Any) -> Response:
    dash = dashboard_of(request)
    q = request.query_params
    size = q.get("limit", str(PAGE_SIZE))
    if not size.isdigit() or not 1 <= int(size) <= 1000:
        return JSONResponse({"error": "bad_request", "detail": "limit must be between 1 and 1000"}, 400)
    raw_page = q.get("page", "1")
    if not raw_page.isdigit() or int(raw_page) < 1:
        return JSONResponse({"error": "bad_request", "detail": "page must be a positive integer"}, 400)
    data = read(
        dash.store, actor=q.get("actor", ""), action=q.get("action", ""), page=int(raw_page), size=int(size)
    )
    return JSONResponse(
        {
            "verification": verification_json(data.verification),
            "total": data.total,
            "matched": data.matched,
            "page": data.page,
            "pages": data.pages,
            "entries": [e.as_dict() for e in data.entries],
        }
    )


def routes() -> list[Route]:
    return [Route("/audit", audit_page), Route("/api/audit", audit_api)]
