"""Incidents: one scraping episode, the evidence gathered about it and how it was handled.

An incident is opened when a detection crosses the policy's ``[incidents]`` threshold (or by
hand), and gathers every later detection that shares a campaign, an account or a network with
it, so one scraper behind a hundred addresses is one incident, not a hundred. It moves through
the response lifecycle ``open -> contained -> assessed -> notified -> closed``; each step notes
who took it, when, and why. The evidence it keeps is what later stages build on: the actors
(addresses, networks, accounts, fingerprints, user agents), the time window, the detectors that
fired and why, request samples, and the exact protected records served to the actors (``kind:id``,
which the people mapping turns into the persons concerned).

Pure: no clock, no storage, no id generation; callers pass time, ids and who acts. The plain
dict form (:meth:`Incident.to_dict`) is what stores keep and what exports and dashboards read;
its layout is documented in docs/incidents.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from .letters import Letter

Stage = Literal["open", "contained", "assessed", "notified", "closed"]
STAGES: tuple[Stage, ...] = ("open", "contained", "assessed", "notified", "closed")
STAGE_MEANING: dict[Stage, str] = {
    "open": "detected; nobody has acted yet",
    "contained": "the scraping is stopped (bans, challenges, blocks in force)",
    "assessed": "what was taken and whose it was is known; breach or not decided",
    "notified": "the people affected, the regulator and the operator were told where required",
    "closed": "nothing left to do (or a false alarm, said in the note)",
}

ACTOR_FIELDS = ("ips", "networks", "accounts", "fingerprints", "user_agents")
MAX_ACTORS = 2000
"""Values kept per actor field; more are counted in ``Actors.more``."""
MAX_SAMPLES = 50
MAX_REASONS = 5
"""Distinct reasons kept per detector."""
MAX_RECORDS = 100_000
"""Record ids kept in one incident; beyond, ``records_truncated`` is set (the log analysis
writes the full list to a CSV named in a sample's ``records_csv``)."""


class IncidentError(ValueError):
    """A step that the lifecycle does not allow (going back, advancing a closed incident)."""


@dataclass(slots=True)
class Actors:
    """Who took part. Values are as the event trail stores them (pseudonyms when the policy
    pseudonymises addresses and accounts); networks are CIDR prefixes or their pseudonyms."""

    ips: list[str] = field(default_factory=list)
    networks: list[str] = field(default_factory=list)
    accounts: list[str] = field(default_factory=list)
    fingerprints: list[str] = field(default_factory=list)
    user_agents: list[str] = field(default_factory=list)
    more: int = 0
    """Values not kept because a field reached :data:`MAX_ACTORS`."""

    def add(self, other: Actors) -> None:
        for name in ACTOR_FIELDS:
            mine: list[str] = getattr(self, name)
            known = set(mine)
            for value in getattr(other, name):
                if value in known or not value:
                    continue
                if len(mine) >= MAX_ACTORS:
                    self.more += 1
                    continue
                mine.append(value)
                known.add(value)
        self.more += other.more

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {name: list(getattr(self, name)) for name in ACTOR_FIELDS}
        out["more"] = self.more
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Actors:
        return cls(
            **{name: [str(v) for v in data.get(name, ())] for name in ACTOR_FIELDS},
            more=int(data.get("more", 0)),
        )


@dataclass(slots=True)
class Detection:
    """One finding about one actor (or group), as fed to :func:`correlate`."""

    ts: float
    """When it was seen (the latest request it covers)."""
    source: str
    """``live`` (a running door), ``analyze`` (a log analysis), ``manual``."""
    verdict: str
    """``block`` / ``challenge`` (live), ``scraper`` / ``suspicious`` (analyze)."""
    actors: Actors
    first_ts: float | None = None
    """The earliest request it covers (defaults to ``ts``)."""
    campaign: str = ""
    """A campaign id shared by every detection of one coordinated scraper (a fingerprint seen on
    many addresses, or a campaign the log analysis found)."""
    detectors: Mapping[str, Sequence[str]] = field(default_factory=dict)
    """Detector name -> the reasons it gave."""
    records: Sequence[str] = ()
    """``kind:id`` of every protected record served to the actor (as far as known)."""
    records_count: int = 0
    """Distinct records served, when more than ``records`` lists (0: ``len(records)``)."""
    requests: int = 0
    samples: Sequence[Mapping[str, Any]] = ()
    """A few requests as seen: ts, method, path, status, user_agent, ip, action."""
    score: float = 0.0


@dataclass(slots=True)
class Step:
    stage: Stage
    at: float
    by: str
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"stage": self.stage, "at": self.at, "by": self.by, "note": self.note}


@dataclass(slots=True)
class DetectorHit:
    count: int = 0
    first: float = 0.0
    last: float = 0.0
    reasons: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class RiskJudgement:
    """The privacy officer's judgement of the risk to the people affected (GDPR high risk,
    PIPEDA real risk of significant harm, NDB likely serious harm), as recorded."""

    high_risk: bool | None
    """True: high; False: judged below the threshold; None: not judged (withdrawn)."""
    at: float
    by: str
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"high_risk": self.high_risk, "at": self.at, "by": self.by, "note": self.note}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RiskJudgement:
        raw = data.get("high_risk")
        return cls(
            None if raw is None else bool(raw),
            float(data.get("at", 0.0)),
            str(data.get("by", "")),
            str(data.get("note", "")),
        )


@dataclass(slots=True)
class Incident:
    id: str
    title: str
    opened_at: float
    stage: Stage = "open"
    steps: list[Step] = field(default_factory=list)
    owner: str = ""
    team: str = ""
    actors: Actors = field(default_factory=Actors)
    campaigns: list[str] = field(default_factory=list)
    first_seen: float = 0.0
    last_seen: float = 0.0
    detectors: dict[str, DetectorHit] = field(default_factory=dict)
    samples: list[dict[str, Any]] = field(default_factory=list)
    records: list[str] = field(default_factory=list)
    """Distinct ``kind:id`` of protected records served to the actors, in the order first seen."""
    records_count: int = 0
    """Distinct records served as far as any detection counted (>= ``len(records)``)."""
    records_truncated: bool = False
    requests: int = 0
    detections: int = 0
    sources: list[str] = field(default_factory=list)
    score: float = 0.0
    """The highest score any detection carried."""
    risk: RiskJudgement | None = None
    """The officer's breach-risk judgement (``incidents assess``); None until recorded."""
    letters: list[Letter] = field(default_factory=list)
    """Tracking records of the letters this incident calls for (``core/letters.py``)."""
    version: int = 0
    """The stored version this copy was read at (0: never stored). A store saves a copy only
    if it still holds that version, then bumps it (see ``StateStore.save_incident``)."""

    @property
    def is_open(self) -> bool:
        return self.stage != "closed"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "opened_at": self.opened_at,
            "stage": self.stage,
            "steps": [s.to_dict() for s in self.steps],
            "owner": self.owner,
            "team": self.team,
            "actors": self.actors.to_dict(),
            "campaigns": list(self.campaigns),
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "detectors": {
                name: {"count": h.count, "first": h.first, "last": h.last, "reasons": list(h.reasons)}
                for name, h in sorted(self.detectors.items())
            },
            "samples": [dict(s) for s in self.samples],
            "records": list(self.records),
            "records_count": self.records_count,
            "records_truncated": self.records_truncated,
            "requests": self.requests,
            "detections": self.detections,
            "sources": list(self.sources),
            "score": self.score,
            "risk": None if self.risk is None else self.risk.to_dict(),
            "letters": [letter.to_dict() for letter in self.letters],
            "version": self.version,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Incident:
        stage = str(data.get("stage", "open"))
        if stage not in STAGES:
            raise ValueError(f"unknown incident stage {stage!r}")
        return cls(
            id=str(data["id"]),
            title=str(data.get("title", "")),
            opened_at=float(data.get("opened_at", 0.0)),
            stage=stage,
            steps=[
                Step(_stage(s["stage"]), float(s["at"]), str(s["by"]), str(s.get("note", "")))
                for s in data.get("steps", ())
            ],
            owner=str(data.get("owner", "")),
            team=str(data.get("team", "")),
            actors=Actors.from_dict(data.get("actors", {})),
            campaigns=[str(c) for c in data.get("campaigns", ())],
            first_seen=float(data.get("first_seen", 0.0)),
            last_seen=float(data.get("last_seen", 0.0)),
            detectors={
                str(name): DetectorHit(
                    int(h.get("count", 0)),
                    float(h.get("first", 0.0)),
                    float(h.get("last", 0.0)),
                    [str(r) for r in h.get("reasons", ())],
                )
                for name, h in dict(data.get("detectors", {})).items()
            },
            samples=[dict(s) for s in data.get("samples", ())],
            records=[str(r) for r in data.get("records", ())],
            records_count=int(data.get("records_count", 0)),
            records_truncated=bool(data.get("records_truncated", False)),
            requests=int(data.get("requests", 0)),
            detections=int(data.get("detections", 0)),
            sources=[str(s) for s in data.get("sources", ())],
            score=float(data.get("score", 0.0)),
            # Both added after incidents were first stored: absent in older documents.
            risk=RiskJudgement.from_dict(data["risk"]) if data.get("risk") else None,
            letters=[Letter.from_dict(x) for x in data.get("letters") or ()],
            version=int(data.get("version", 0)),
        )


def _stage(value: object) -> Stage:
    text = str(value)
    if text not in STAGES:
        raise ValueError(f"unknown incident stage {text!r}")
    return text


# -- correlation ---------------------------------------------------------------------------------


def shares_actors(incident: Incident, detection: Detection) -> bool:
    """True when ``detection`` is about the same scraper: a shared campaign, account or network.

    Addresses alone are not enough to join (a network is, and every address's network is in
    ``networks``): two unrelated scrapers rarely share a /24, but a shared campaign, account or
    network is what "the same operation" means here. Fingerprints are not enough either: a
    popular browser build is shared by many unrelated clients; a fingerprint that acted as one
    client across addresses is given as the ``campaign``.
    """
    if detection.campaign and detection.campaign in incident.campaigns:
        return True
    mine = incident.actors
    theirs = detection.actors
    return bool(set(theirs.accounts) & set(mine.accounts) or set(theirs.networks) & set(mine.networks))


def correlate(incidents: Iterable[Incident], detection: Detection) -> Incident | None:
    """The open incident ``detection`` belongs to (the oldest of several), or None: open a new one."""
    found = [i for i in incidents if i.is_open and shares_actors(i, detection)]
    return min(found, key=lambda i: (i.opened_at, i.id)) if found else None


def merge_related(detections: Sequence[Detection]) -> list[Detection]:
    """Fold findings about one operation into one, before they reach the store: those with the
    same campaign, or (without a campaign) the same first network. A campaign over 5 000
    addresses is then one write per round, not 5 000. Other links (a shared account) are left
    to :func:`correlate`. Order: each group where its first member was."""
    groups: dict[str, Detection] = {}
    for d in detections:
        key = f"c:{d.campaign}" if d.campaign else f"n:{d.actors.networks[0]}" if d.actors.networks else ""
        if not key:
            groups[f"alone:{len(groups)}"] = d
            continue
        known = groups.get(key)
        groups[key] = d if known is None else _merged(known, d)
    return list(groups.values())


def _merged(a: Detection, b: Detection) -> Detection:
    actors = Actors()
    actors.add(a.actors)
    actors.add(b.actors)
    detectors: dict[str, list[str]] = {k: list(v) for k, v in a.detectors.items()}
    for name, reasons in b.detectors.items():
        mine = detectors.setdefault(name, [])
        mine.extend(r for r in reasons if r not in mine and len(mine) < MAX_REASONS)
    records = list(dict.fromkeys([*a.records, *b.records]))
    firsts = [t for t in (a.first_ts, b.first_ts) if t is not None] or [min(a.ts, b.ts)]
    return Detection(
        ts=max(a.ts, b.ts),
        first_ts=min(firsts),
        source=a.source,
        verdict=a.verdict
        if a.verdict == b.verdict
        else "block"
        if "block" in (a.verdict, b.verdict)
        else a.verdict,
        actors=actors,
        campaign=a.campaign,
        detectors=detectors,
        records=records,
        records_count=max(len(records), a.records_count, b.records_count),
        requests=a.requests + b.requests,
        samples=[*a.samples, *b.samples][:MAX_SAMPLES],
        score=max(a.score, b.score),
    )


def open_incident(
    incident_id: str, detection: Detection, *, at: float, by: str, title: str = "", note: str = ""
) -> Incident:
    """A new incident holding ``detection``, opened at ``at`` by ``by`` (a user or ``system``)."""
    first = detection.first_ts if detection.first_ts is not None else detection.ts
    note = note or f"opened from a {detection.source} detection ({detection.verdict})"
    incident = Incident(
        id=incident_id,
        title=title or describe(detection),
        opened_at=at,
        steps=[Step("open", at, by, note)],
        first_seen=first,
        last_seen=detection.ts,
    )
    absorb(incident, detection)
    return incident


def describe(detection: Detection) -> str:
    """A one-line title: what was seen, from how many addresses, how many records."""
    a = detection.actors
    what = f"campaign {detection.campaign}" if detection.campaign else f"{detection.verdict} scraper"
    records = detection.records_count or len(detection.records)
    parts = [what, f"{len(a.ips) + a.more} address{'es' if len(a.ips) + a.more != 1 else ''}"]
    if a.accounts:
        parts.append(f"{len(a.accounts)} account{'s' if len(a.accounts) != 1 else ''}")
    parts.append(f"{records} record{'s' if records != 1 else ''} exposed")
    return ", ".join(parts)


def absorb(incident: Incident, detection: Detection) -> None:
    """Add ``detection``'s evidence to ``incident``."""
    incident.actors.add(detection.actors)
    if detection.campaign and detection.campaign not in incident.campaigns:
        incident.campaigns.append(detection.campaign)
    first = detection.first_ts if detection.first_ts is not None else detection.ts
    incident.first_seen = min(incident.first_seen or first, first)
    incident.last_seen = max(incident.last_seen, detection.ts)
    for name, reasons in detection.detectors.items():
        hit = incident.detectors.get(name)
        if hit is None:
            hit = incident.detectors[name] = DetectorHit(0, detection.ts, detection.ts)
        hit.count += 1
        hit.first = min(hit.first, detection.ts)
        hit.last = max(hit.last, detection.ts)
        for reason in reasons:
            if reason not in hit.reasons and len(hit.reasons) < MAX_REASONS:
                hit.reasons.append(reason)
    room = MAX_SAMPLES - len(incident.samples)
    if room > 0:
        incident.samples.extend(dict(s) for s in detection.samples[:room])
    known = set(incident.records)
    for record in detection.records:
        if record in known:
            continue
        if len(incident.records) >= MAX_RECORDS:
            incident.records_truncated = True
            break
        incident.records.append(record)
        known.add(record)
    incident.records_count = max(
        incident.records_count, len(incident.records), detection.records_count or len(detection.records)
    )
    incident.requests += detection.requests
    incident.detections += 1
    incident.score = max(incident.score, detection.score)
    if detection.source not in incident.sources:
        incident.sources.append(detection.source)


# -- handling ------------------------------------------------------------------------------------


def advance(incident: Incident, to: Stage | None, *, at: float, by: str, note: str = "") -> Step:
    """Move ``incident`` forward to ``to`` (None: the next stage) and record the step.

    Stages may be skipped forward (a false alarm goes straight to ``closed``, saying so in the
    note), never backward; a closed incident stays closed (open a new one instead)."""
    current = STAGES.index(incident.stage)
    if incident.stage == "closed":
        raise IncidentError(f"incident {incident.id} is closed")
    target = STAGES[current + 1] if to is None else to
    if target not in STAGES:
        raise IncidentError(f"unknown stage {target!r}; stages are {', '.join(STAGES)}")
    if STAGES.index(target) <= current:
        raise IncidentError(f"incident {incident.id} is already {incident.stage}; stages only move forward")
    if not by:
        raise IncidentError("a step needs who took it")
    step = Step(target, at, by, note)
    incident.steps.append(step)
    incident.stage = target
    return step


def assign(incident: Incident, *, owner: str | None, team: str | None, at: float, by: str) -> dict[str, Any]:
    """Set the owner and/or team; returns what changed as {field: [old, new]} for the audit log."""
    if not by:
        raise IncidentError("an assignment needs who made it")
    changed: dict[str, Any] = {}
    if owner is not None and owner != incident.owner:
        changed["owner"] = [incident.owner, owner]
        incident.owner = owner
    if team is not None and team != incident.team:
        changed["team"] = [incident.team, team]
        incident.team = team
    return changed


def summary(incident: Incident) -> dict[str, Any]:
    """The short form for lists and audit details."""
    a = incident.actors
    return {
        "id": incident.id,
        "title": incident.title,
        "stage": incident.stage,
        "owner": incident.owner,
        "team": incident.team,
        "opened_at": incident.opened_at,
        "first_seen": incident.first_seen,
        "last_seen": incident.last_seen,
        "addresses": len(a.ips) + a.more,
        "accounts": len(a.accounts),
        "records": incident.records_count,
        "detections": incident.detections,
    }
