"""The Policy page: the policy in force, its published versions with diffs and authors, a draft
(admin), its validation, a replay of recorded traffic under both, and publishing.

Where things live (the same on every store backend, because only the audit log and one setting
are used):

* **Versions** are audit entries with action ``policy.publish``: the author is the entry's actor,
  and its details hold the TOML text, its SHA-256 and the SHA-256 of the text it replaced. So
  the history is as tamper-evident as the audit log itself. ``policy.write`` entries (from
  ``scrapewarden init --state``) are listed too; they carry the hash but not the text.
* **The draft** is one setting, ``dashboard.policy_draft`` (JSON: text, author, time): one draft
  per store, shared by the admins.

Publishing writes the draft to the policy file the dashboard was started with (``--policy``),
atomically (a temporary file renamed over it). Running doors read it on their next reload
(SIGHUP for ``scrapewarden proxy``; a restart for ``scrapewarden authz`` and apps with the
middleware); the dashboard never signals them.

Replay has three sources (``source=``):

* ``events``: the store's refusals. Events hold the **non-allowed decisions** (see
  ``Warden._after``), so this shows a draft being stricter or milder on traffic that was
  stopped or challenged once, not what it would do to traffic that was always allowed.
* ``sampled``: every request of the sampled addresses (``[privacy] record_allowed_share``, see
  :mod:`scrapewarden.core.sampling`), allowed ones included, so a stricter draft shows what it
  would newly refuse; counts are scaled up by the share to estimate all traffic.
* ``log``: the access logs the dashboard was started with (``--access-log``): all traffic,
  the last N hours before the newest line (:mod:`scrapewarden.logs.replay_source`); lines that
  do not parse are counted and shown.

Events keep no headers, so header checks and address reputation are not replayed from them
(both engines run without them); pseudonymised addresses are replayed as stand-in addresses,
one per pseudonym, each in a network of its own (per-network budgets cannot be replayed from
pseudonyms). Addresses from a log are shown pseudonymised, as everywhere else on the dashboard.
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import ipaddress
import json
import os
import tempfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from ..challenge.service import VERIFY_PATH
from ..core.audit import AuditEntry
from ..core.facts import RequestFacts
from ..core.policy import Policy
from ..core.pseudonym import Pseudonymizer
from ..core.replay import ReplayResult, replay
from ..core.sampling import ALLOWED, share_of
from ..logs.replay_source import LogRequests, read_requests
from ..policy_file import PolicyError, PolicyIssue, load_policy, policy_from_env, policy_from_text
from ..state.audit import entries
from ..state.base import Event, StateStore
from ..state.summary import CHALLENGE_FAILED, CHALLENGE_PASSED
from . import audit_view, policy_reload
from .views import recent_events
from .web import Visit, dashboard_of, page

DRAFT_SETTING = "dashboard.policy_draft"
PUBLISH = "policy.publish"
REPLAY_HOURS = (1, 6, 24, 168)
SOURCES = {
    "events": "recorded refusals",
    "sampled": "sampled addresses, every request",
    "log": "access log",
}
MAX_DRAFT_BYTES = 60 * 1024


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# -- the policy in force and its versions ---------------------------------------------------------


def current_text(path: Path | None) -> str:
    if path is None:
        return ""
    try:
        return path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        return f"# cannot read {path}: {exc.strerror or exc}\n"


def current_policy(path: Path | None) -> Policy:
    return load_policy(path) if path is not None else policy_from_env()


@dataclass(frozen=True, slots=True)
class Version:
    entry: AuditEntry
    sha256: str
    text: str | None
    """None for a ``policy.write`` entry (it records the hash only)."""
    diff: str
    """Unified diff from the version before (empty for the first, or without text)."""


def versions(store: StateStore) -> list[Version]:
    """Published versions, newest first."""
    found: list[Version] = []
    previous: str | None = None
    for entry in entries(store):
        if entry.action not in (PUBLISH, "policy.write"):
            continue
        details = entry.details
        text = details.get("text") if isinstance(details.get("text"), str) else None
        diff = ""
        if text is not None and previous is not None:
            diff = "".join(
                difflib.unified_diff(
                    previous.splitlines(keepends=True),
                    text.splitlines(keepends=True),
                    "before",
                    f"version {entry.seq}",
                )
            )
        found.append(Version(entry, str(details.get("sha256", "")), text, diff))
        if text is not None:
            previous = text
    found.reverse()
    return found


# -- the draft -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Draft:
    text: str
    by: str
    at: float


def load_draft(store: StateStore) -> Draft | None:
    raw = store.get_setting(DRAFT_SETTING)
    if not raw:
        return None
    try:
        data = json.loads(raw)
        return Draft(str(data["text"]), str(data["by"]), float(data["at"]))
    except (ValueError, KeyError, TypeError):
        return None


def save_draft(store: StateStore, draft: Draft | None) -> None:
    value = "" if draft is None else json.dumps({"text": draft.text, "by": draft.by, "at": draft.at})
    store.set_setting(DRAFT_SETTING, value)


def validate(text: str) -> tuple[Policy | None, list[PolicyIssue]]:
    try:
        return policy_from_text(text, source="draft"), []
    except PolicyError as exc:
        return None, exc.issues


# -- replay over recorded events --------------------------------------------------------------------


def replay_requests(events: Sequence[Event], *, since: float) -> list[RequestFacts]:
    """The recorded decisions since ``since`` as requests, oldest first (challenge answers,
    which are not requests to the site, left out)."""
    stand_ins: dict[str, str] = {}
    out: list[RequestFacts] = []
    for event in sorted(events, key=lambda e: (e.ts, e.id or 0)):
        if (
            event.ts < since
            or event.action in (CHALLENGE_PASSED, CHALLENGE_FAILED)
            or event.path == VERIFY_PATH
        ):
            continue
        path, _, query = event.path.partition("?")
        out.append(
            RequestFacts(
                now=event.ts,
                ip=_address(event.ip, stand_ins),
                method=event.method or "GET",
                path=path or "/",
                query=query,
                headers=(("user-agent", event.user_agent),) if event.user_agent else (),
                user_agent=event.user_agent,
                account_id=event.account,
                session_id=event.session,
                extra={"shown_ip": event.ip},
            )
        )
    return out


def _address(value: str, stand_ins: dict[str, str]) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        pass
    known = stand_ins.get(value)
    if known is None:
        # One documentation-range IPv6 address per pseudonym, each in its own /64.
        n = len(stand_ins) + 1
        known = stand_ins[value] = str(ipaddress.IPv6Address((0x20010DB8 << 96) | (n << 64) | 1))
    return known


@dataclass(frozen=True, slots=True)
class ReplayRun:
    result: ReplayResult
    source: str
    log: LogRequests | None = None
    """What was read from the access logs (source ``log``)."""


def sampled_events(events: Sequence[Event]) -> tuple[list[Event], float | None]:
    """The events of sampled addresses, and the share they were sampled at (the share most of
    them carry, should the policy have changed within the window)."""
    kept: list[Event] = []
    shares: Counter[float] = Counter()
    for event in events:
        share = share_of(event.reasons)
        if share is not None:
            kept.append(event)
            shares[share] += 1
    return kept, (shares.most_common(1)[0][0] if shares else None)


def run_replay(
    store: StateStore,
    path: Path | None,
    draft_text: str,
    *,
    now: float,
    hours: int,
    source: str = "events",
    access_logs: Sequence[Path] = (),
    pseudonymizer: Pseudonymizer | None = None,
) -> ReplayRun:
    draft, issues = validate(draft_text)
    if draft is None:
        raise PolicyError(issues)
    current = current_policy(path)
    if source == "log":
        read = read_requests(access_logs, hours=hours)
        if pseudonymizer is not None and pseudonymizer.enabled:
            for facts in read.requests:
                facts.extra["shown_ip"] = pseudonymizer.ip(facts.ip)
        return ReplayRun(replay(read.requests, current, draft), source, read)
    events = recent_events(store)
    since = now - hours * 3600
    if source == "sampled":
        kept, share = sampled_events(events)
        requests = replay_requests(kept, since=since)
        return ReplayRun(replay(requests, current, draft, share=share or 1.0), source)
    refusals = [e for e in events if e.action != ALLOWED]  # sampled allowed ones have a source of their own
    return ReplayRun(replay(replay_requests(refusals, since=since), current, draft), "events")


# -- publishing ------------------------------------------------------------------------------------


def publish(store: StateStore, path: Path, text: str, *, by: str, now: float) -> str:
    """Write ``text`` over the policy file (atomically) and audit it; the new SHA-256."""
    before = current_text(path)
    folder = path.parent
    handle, temp = tempfile.mkstemp(prefix=".policy-", suffix=".toml", dir=folder)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        with contextlib.suppress(OSError):  # keep the file's permissions (mkstemp makes 0600)
            os.chmod(temp, path.stat().st_mode & 0o777)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    digest = sha256(text)
    audit_view.write(
        store,
        now,
        by,
        PUBLISH,
        str(path),
        sha256=digest,
        previous_sha256=sha256(before),
        text=text,
        bytes=len(text.encode("utf-8")),
    )
    return digest


# -- the page ------------------------------------------------------------------------------------------


def _hours(raw: str | None) -> int:
    try:
        value = int(raw or "24")
    except ValueError:
        return 24
    return value if value in REPLAY_HOURS else 24


def _source(raw: str | None, have_logs: bool) -> str:
    if raw == "log" and not have_logs:
        return "events"
    return raw if raw in SOURCES else "events"


@page("viewer")
def policy_page(request: Request, visit: Visit) -> Response:
    dash = dashboard_of(request)
    path: Path | None = dash.policy_path
    q = request.query_params
    draft = load_draft(dash.store)
    text = current_text(path)
    context: dict[str, Any] = {
        "policy_path": path,
        "current": text,
        "current_sha": sha256(text) if path is not None else "",
        "versions": versions(dash.store),
        "draft": draft,
        "hours": _hours(q.get("hours")),
        "hours_choices": REPLAY_HOURS,
        "sources": {k: v for k, v in SOURCES.items() if k != "log" or dash.access_logs},
        "source": _source(q.get("source"), bool(dash.access_logs)),
        "access_logs": dash.access_logs,
        "done": q.get("done", ""),
        "error": "",
        "reload_error": dash.policy_follower.error,
    }
    status = 200
    if draft is not None:
        policy, issues = validate(draft.text)
        context["issues"] = issues
        context["draft_ok"] = policy is not None
        if draft.text != text:
            context["draft_diff"] = "".join(
                difflib.unified_diff(
                    text.splitlines(keepends=True), draft.text.splitlines(keepends=True), "in force", "draft"
                )
            )
        if q.get("replay") and policy is not None:
            try:
                run = run_replay(
                    dash.store,
                    path,
                    draft.text,
                    now=dash.clock(),
                    hours=context["hours"],
                    source=context["source"],
                    access_logs=dash.access_logs,
                    pseudonymizer=dash.warden.pseudonymizer,
                )
                context["replay"], context["replay_log"] = run.result, run.log
            except PolicyError as exc:  # the file in force no longer loads
                context["error"] = f"the policy in force does not load: {exc}"
                status = 409
    return dash.render(request, visit, "policy.html", status, **context)


@page("admin")
def policy_draft(request: Request, visit: Visit) -> Response:
    """Save the draft (``do=save``), or throw it away (``do=discard``)."""
    dash = dashboard_of(request)
    assert visit.user is not None
    form = visit.form
    if form.get("do") == "discard":
        save_draft(dash.store, None)
        return RedirectResponse("/policy?done=discarded", status_code=303)
    text = form.get("text", "").replace("\r\n", "\n")
    if len(text.encode("utf-8")) > MAX_DRAFT_BYTES:
        return dash.error(request, visit, 413, f"a policy here is at most {MAX_DRAFT_BYTES} bytes")
    save_draft(dash.store, Draft(text, visit.user.name, dash.clock()))
    return RedirectResponse("/policy?done=saved#draft", status_code=303)


@page("admin")
def policy_publish(request: Request, visit: Visit) -> Response:
    dash = dashboard_of(request)
    assert visit.user is not None
    path: Path | None = dash.policy_path
    draft = load_draft(dash.store)
    if path is None:
        return dash.error(
            request, visit, 409, "The dashboard was started without --policy: there is no file to publish to."
        )
    if draft is None:
        return dash.error(request, visit, 409, "There is no draft to publish.")
    if visit.form.get("sha256") != sha256(draft.text):
        return dash.error(
            request, visit, 409, "The draft changed since this page was loaded; reload and check it."
        )
    policy, issues = validate(draft.text)
    if policy is None:
        return dash.error(request, visit, 400, "The draft does not validate: " + "; ".join(map(str, issues)))
    try:
        publish(dash.store, path, draft.text, by=visit.user.name, now=dash.clock())
    except OSError as exc:
        return dash.error(request, visit, 500, f"Could not write the policy file: {exc.strerror or exc}")
    save_draft(dash.store, None)
    policy_reload.follow_policy(dash)  # this dashboard runs with it from now on
    return RedirectResponse("/policy?done=published", status_code=303)


def routes() -> list[Route]:
    return [
        Route("/policy", policy_page),
        Route("/policy/draft", policy_draft, methods=["POST"]),
        Route("/policy/publish", policy_publish, methods=["POST"]),
    ]
