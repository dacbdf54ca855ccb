"""The Overview's campaign and record figures: events and incidents in, figures out (no I/O).

Definitions (docs/dashboard.md repeats them for operators):

* **Active campaign**: an *open* incident (any stage but ``closed``) whose actors were last seen
  in the window. An incident is what scrapewarden already groups into one case: every finding
  that shares a campaign id (one client fingerprint on many addresses), an account or a network
  with an open incident joins it, so one incident is one coordinated collection effort — what an
  operator calls a campaign. Closed incidents are handled and no longer count.
* **Records protected**: distinct protected records (``kind:id``, e.g. ``profile:42``) that
  were asked for in the window and *not served* at that moment because the request was blocked,
  throttled (both: "refused") or challenged, enforced (observe-mode decisions protect nothing).
  A challenged request answered correctly afterwards may still get its record; that is a person
  passing, which the solve rate shows.
* **Records exposed**: distinct records *served* to actors that were then refused and filed in
  an incident (the policy's ``[incidents]`` rules: a client refused after receiving at least
  ``min_records`` records), over the incidents active in the window, open or closed. These are
  the records a scraper got before it was stopped, i.e. what an incident report must name.
  An incident keeps at most a bounded list of records; when one was cut short the figure is a
  lower bound and the page says "at least".
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..core.incidents import Incident
from ..state.base import Event
from .live_metrics import LiveFigure

REFUSING = ("block", "throttle")
CHALLENGING = ("challenge",)
MAX_CAMPAIGNS_SHOWN = 10


@dataclass(frozen=True, slots=True)
class Campaign:
    id: str
    title: str
    stage: str
    addresses: int
    accounts: int
    networks: int
    records: int
    requests: int
    first_seen: float
    last_seen: float
    detectors: tuple[str, ...]


def _last_seen(incident: Incident) -> float:
    return incident.last_seen or incident.opened_at


def active_campaigns(incidents: Iterable[Incident], *, since: float) -> list[Campaign]:
    """Open incidents last seen at or after ``since``, most recently active first."""
    found = []
    for incident in incidents:
        if not incident.is_open or _last_seen(incident) < since:
            continue
        actors = incident.actors
        found.append(
            Campaign(
                id=incident.id,
                title=incident.title,
                stage=incident.stage,
                addresses=len(actors.ips) + (actors.more if actors.ips else 0),
                accounts=len(actors.accounts),
                networks=len(actors.networks),
                records=max(incident.records_count, len(incident.records)),
                requests=incident.requests,
                first_seen=incident.first_seen or incident.opened_at,
                last_seen=_last_seen(incident),
                detectors=tuple(sorted(incident.detectors)),
            )
        )
    found.sort(key=lambda c: (-c.last_seen, c.id))
    return found


@dataclass(frozen=True, slots=True)
class RecordFigures:
    protected: int
    """Distinct records whose requests were refused or challenged in the window."""
    protected_refused: int
    """Of those, records with at least one refused (blocked or throttled) request."""
    protected_challenged: int
    """Of those, records with at least one challenged request."""
    requests_stopped: int
    """Record requests refused or challenged (a record asked for twice counts twice)."""
    exposed: int
    """Distinct records served to actors named in incidents active in the window."""
    exposed_at_least: bool
    """True when an incident's list of records was cut short: ``exposed`` is a lower bound."""
    incidents: int
    """Incidents the exposed records come from."""

    @property
    def protected_share(self) -> float | None:
        """Protected / (protected + exposed): of the records scrapers went for, how many they did
        not get (None when neither happened)."""
        seen = self.protected + self.exposed
        return self.protected / seen if seen else None


def record_figures(events: Iterable[Event], incidents: Iterable[Incident], *, since: float) -> RecordFigures:
    refused: set[str] = set()
    challenged: set[str] = set()
    stopped = 0
    for event in events:
        if event.ts < since or not event.record or not event.enforced:
            continue
        if event.action in REFUSING:
            refused.add(event.record)
        elif event.action in CHALLENGING:
            challenged.add(event.record)
        else:
            continue
        stopped += 1
    exposed: set[str] = set()
    counted = 0
    cut_short = False
    filed = 0
    for incident in incidents:
        if _last_seen(incident) < since:
            continue
        filed += 1
        exposed.update(incident.records)
        counted = max(counted, incident.records_count)
        cut_short = cut_short or incident.records_truncated or incident.records_count > len(incident.records)
    return RecordFigures(
        protected=len(refused | challenged),
        protected_refused=len(refused),
        protected_challenged=len(challenged),
        requests_stopped=stopped,
        exposed=max(len(exposed), counted),
        exposed_at_least=cut_short,
        incidents=filed,
    )


# -- in the JSON API (``/api/summary``) ------------------------------------------------------------


def overview_json(data: Any, live: LiveFigure) -> dict[str, Any]:
    """The figures above and the live rate, for ``/api/summary`` (``data``: ``views.Overview``)."""
    records: RecordFigures | None = data.records
    return {
        "requests_per_second": live.per_second,
        "requests_per_second_by_action": dict(live.by_action),
        "metrics_sources": [
            {"name": s.name, "ok": s.ok, "error": s.error, "per_second": s.per_second, "seconds": s.seconds}
            for s in live.sources
        ],
        "campaigns": [
            {
                "id": c.id,
                "title": c.title,
                "stage": c.stage,
                "addresses": c.addresses,
                "accounts": c.accounts,
                "records": c.records,
                "requests": c.requests,
                "last_seen": c.last_seen,
            }
            for c in data.campaigns
        ],
        "records": None
        if records is None
        else {
            "protected": records.protected,
            "protected_refused": records.protected_refused,
            "protected_challenged": records.protected_challenged,
            "requests_stopped": records.requests_stopped,
            "exposed": records.exposed,
            "exposed_at_least": records.exposed_at_least,
            "incidents": records.incidents,
        },
    }


_NUMBER_OR_NULL = {"type": ["number", "null"]}
OVERVIEW_SCHEMA: dict[str, Any] = {
    "requests_per_second": _NUMBER_OR_NULL,
    "requests_per_second_by_action": {"type": "object", "additionalProperties": {"type": "number"}},
    "metrics_sources": {
        "type": "array",
        "items": {
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "ok": {"type": "boolean"},
                "error": {"type": "string"},
                "per_second": _NUMBER_OR_NULL,
                "seconds": _NUMBER_OR_NULL,
            },
        },
    },
    "campaigns": {"type": "array", "items": {"type": "object"}},
    "records": {"type": ["object", "null"]},
}
"""The properties :func:`overview_json` adds, for the OpenAPI document."""
