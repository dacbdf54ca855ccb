"""The evidence of one incident, as the drafts and the export read it.

Plain data, deliberately small: an id, the time window, the actors (kind + value), the detectors
and their reasons, the exposed records, request samples. :func:`facts_from_incident_dict` reads
the stored incident form (``Incident.to_dict()``: ``records`` as ``kind:id``, ``actors`` as lists
per kind), so an incident from the store turns into facts without either module knowing the other.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..core.exposure import Record

ACTOR_KINDS = {
    "ips": "address",
    "networks": "network",
    "accounts": "account",
    "fingerprints": "fingerprint",
    "user_agents": "user agent",
}


@dataclass(frozen=True, slots=True)
class Actor:
    kind: str
    """``address``, ``network``, ``account``, ``fingerprint``, ``user agent``."""
    value: str


@dataclass(slots=True)
class IncidentFacts:
    id: str
    title: str
    detected_at: float
    """When the incident was opened: the moment the organisation became aware of it."""
    first_seen: float
    last_seen: float
    actors: list[Actor] = field(default_factory=list)
    detectors: dict[str, list[str]] = field(default_factory=dict)
    """Detector name -> the reasons it gave."""
    records: list[Record] = field(default_factory=list)
    records_count: int = 0
    """Distinct records served (at least ``len(records)``; more when the list was truncated)."""
    requests: int = 0
    samples: list[dict[str, Any]] = field(default_factory=list)
    """A few requests as seen: ts, method, path, status, user_agent, ip."""

    def actors_of(self, kind: str) -> list[str]:
        return [a.value for a in self.actors if a.kind == kind]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "detected_at": self.detected_at,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "actors": [{"kind": a.kind, "value": a.value} for a in self.actors],
            "detectors": {name: list(reasons) for name, reasons in sorted(self.detectors.items())},
            "records": [r.key for r in self.records],
            "records_count": max(self.records_count, len(self.records)),
            "requests": self.requests,
            "samples": [dict(s) for s in self.samples],
        }


def facts_from_incident_dict(data: Mapping[str, Any]) -> IncidentFacts:
    """Facts from a stored incident (the dict layout of ``Incident.to_dict``)."""
    actors: list[Actor] = []
    raw_actors = data.get("actors") or {}
    for field_name, kind in ACTOR_KINDS.items():
        for value in raw_actors.get(field_name, ()):
            actors.append(Actor(kind, str(value)))
    detectors: dict[str, list[str]] = {}
    for name, hit in (data.get("detectors") or {}).items():
        reasons = hit.get("reasons", ()) if isinstance(hit, Mapping) else hit
        detectors[str(name)] = [str(r) for r in reasons]
    records = [Record.parse(str(key)) for key in data.get("records", ())]
    opened = float(data.get("opened_at", 0.0))
    return IncidentFacts(
        id=str(data["id"]),
        title=str(data.get("title", "")),
        detected_at=opened,
        first_seen=float(data.get("first_seen") or opened),
        last_seen=float(data.get("last_seen") or opened),
        actors=actors,
        detectors=detectors,
        records=records,
        records_count=int(data.get("records_count", 0)),
        requests=int(data.get("requests", 0)),
        samples=[dict(s) for s in _samples(data.get("samples", ()))],
    )


def _samples(raw: Sequence[Any]) -> list[Mapping[str, Any]]:
    return [s for s in raw if isinstance(s, Mapping)]
