"""The compliance report (statement R11): which measures were on, what they caught, over a period.

:func:`build_report` puts together, as one JSON-ready dict: each of the regulators' measures
R1-R17 with its status and why (:mod:`.measures`), figures from the event trail
(:mod:`.event_figures`), bans and operator allows made and lifted, the incidents and how they
were handled (counts by stage, time to contain and to notify, owners), the audit chain's
verification and head hash, and the policy changes recorded in the period. The layout
(:data:`SCHEMA`) is documented in docs/compliance.md and kept stable by a test.

It describes the configuration and the events recorded; it says so, and that it is not legal
advice, in every report (:data:`DISCLAIMER`).

Pure: no I/O, no clock. The adapter (``cli/report_cmds.py``) reads the store, verifies the
audit chain and passes the time the report is made.
"""

from __future__ import annotations

import statistics
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from .incidents import STAGES, Incident, Stage, summary
from .measures import MEASURES, STATUSES, Inputs, allows_in_period, assess, changed_settings
from .reasons import OPERATOR_ALLOW

SCHEMA = "scrapewarden-compliance-1"
"""Names the JSON layout; a change that renames or removes a key gets a new name."""

DISCLAIMER = (
    "This report describes scrapewarden's configuration and the events it recorded over the "
    "period. It does not show that the organisation complies with any law, and it is not legal "
    "advice: have it reviewed by someone qualified before relying on it."
)


# -- the report -------------------------------------------------------------------------------------


def build_report(inputs: Inputs) -> dict[str, Any]:
    """The whole report as a JSON-ready dict (layout: docs/compliance.md)."""
    measures = []
    for m in MEASURES:
        a = assess(m, inputs)
        measures.append(
            {
                "id": m.id,
                "measure": m.measure,
                "answer": m.answer,
                "status": a.status,
                "why": list(a.why),
                "settings": a.settings,
                "caught": a.caught,
            }
        )
    counts = Counter(m["status"] for m in measures)
    p = inputs.period
    return {
        "schema": SCHEMA,
        "disclaimer": DISCLAIMER,
        "generated_at": inputs.generated_at,
        "generated_at_iso": iso(inputs.generated_at),
        "period": {
            "since": p.since,
            "until": p.until,
            "since_iso": iso(p.since),
            "until_iso": iso(p.until),
            "days": round(p.days, 3),
        },
        "policy": {
            "source": inputs.policy_source,
            "sha256": inputs.policy_sha256,
            "mode": inputs.policy.mode,
            "changed_from_defaults": changed_settings(inputs.policy),
        },
        "status_counts": {s: counts[s] for s in STATUSES},
        "measures": measures,
        "events": _events_section(inputs),
        "bans": _bans_section(inputs),
        "incidents": _incidents_section(inputs),
        "audit": _audit_section(inputs),
    }


def _events_section(i: Inputs) -> dict[str, Any]:
    f = i.figures
    return {
        "total": f.events,
        "decisions": dict(sorted(f.actions.items())),
        "observed": dict(sorted(f.observed.items())),
        "detectors": dict(sorted(f.detectors.items(), key=lambda kv: (-kv[1], kv[0]))),
        "challenges": {
            "issued": f.challenges,
            "passed": f.passed,
            "refused": f.failed,
            "solve_rate": f.solve_rate,
            "passed_by_kind": dict(sorted(f.passed_by_kind.items())),
            "refused_by_reason": dict(sorted(f.refused_by_reason.items())),
        },
        "operator_allowed": {
            "total": f.operator_allowed,
            "by_kind": dict(sorted(f.detector_actors.get(OPERATOR_ALLOW, {}).items())),
            "overriding": dict(sorted(f.operator_overrides.items())),
        },
        "protected_record_decisions": f.record_decisions,
        "without_account": f.anonymous_record_decisions,
        "retention_days": i.policy.privacy.event_retention_days,
        "samples": {name: list(kept) for name, kept in sorted(f.samples.items())},
    }


def _bans_section(i: Inputs) -> dict[str, Any]:
    # Ban targets are addresses and accounts (personal data): counted, never listed.
    added = [e for e in i.audit_in_period("ban.") if e.action == "ban.add"]
    removed = [e for e in i.audit_in_period("ban.") if e.action == "ban.remove"]
    allowed, lifted = allows_in_period(i)
    return {
        "added": len(added),
        "removed": len(removed),
        "by_kind": dict(sorted(Counter(e.target.partition(":")[0] for e in added).items())),
        "automatic": sum(1 for e in added if e.actor == "system"),
        "by_people": sum(1 for e in added if e.actor != "system"),
        # Operator allows, the other side of the same tool: always made by people (R15).
        "allows_added": len(allowed),
        "allows_removed": len(lifted),
        "allows_by_kind": dict(sorted(Counter(e.target.partition(":")[0] for e in allowed).items())),
    }


def _incidents_section(i: Inputs) -> dict[str, Any]:
    incidents = i.incidents_in_period()
    contain = [t for x in incidents if (t := time_to(x, "contained")) is not None]
    notify = [t for x in incidents if (t := time_to(x, "notified")) is not None]
    return {
        "total": len(incidents),
        "opened_in_period": sum(1 for x in incidents if i.period.holds(x.opened_at)),
        "by_stage": {s: sum(1 for x in incidents if x.stage == s) for s in STAGES},
        "owners": dict(sorted(Counter(x.owner or "(unassigned)" for x in incidents).items())),
        "teams": dict(sorted(Counter(x.team or "(none)" for x in incidents).items())),
        "time_to_contain": _durations(contain),
        "time_to_notify": _durations(notify),
        "records_exposed": sum(x.records_count for x in incidents),
        "list": [
            {
                **summary(x),
                "time_to_contain": time_to(x, "contained"),
                "time_to_notify": time_to(x, "notified"),
            }
            for x in incidents
        ],
    }


def time_to(incident: Incident, stage: Stage) -> float | None:
    """Seconds from opening to the first step at ``stage`` or beyond (a skipped stage counts as
    reached by the later one); None if not reached. ``notified`` counts only a real notified
    step: closing an incident does not notify anyone."""
    index = STAGES.index(stage)
    for step in incident.steps:
        reached = step.stage == stage if stage == "notified" else STAGES.index(step.stage) >= index
        if reached:
            return max(0.0, step.at - incident.opened_at)
    return None


def _durations(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"count": 0, "median_seconds": None, "max_seconds": None}
    return {"count": len(values), "median_seconds": statistics.median(values), "max_seconds": max(values)}


def _audit_section(i: Inputs) -> dict[str, Any]:
    v = i.verification
    entries = i.audit_in_period()
    return {
        "ok": v.ok,
        "verified": v.verified,
        "head_seq": v.head_seq,
        "head": v.head,
        "broken_seq": v.broken_seq,
        "problem": v.problem,
        "entries_in_period": len(entries),
        "by_action": dict(sorted(Counter(e.action for e in entries).items())),
        "policy_changes": [e.as_dict() for e in entries if e.action.startswith("policy.")],
    }


def iso(ts: float | None) -> str:
    if ts is None:
        return ""
    try:
        return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError):
        return str(ts)
