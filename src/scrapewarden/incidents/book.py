"""The incident book: every change to an incident goes through here, and into the audit log.

Each operation reads the incident, applies a pure change from :mod:`scrapewarden.core.incidents`,
and saves it with the store's compare-and-set (``save_incident``): when another process (a
server opening incidents, an operator at the CLI) changed it meanwhile, the change is applied
again to the fresh copy. Only a saved change is audited, one entry per change, so the audit log
and the incidents tell the same story.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from ..core.audit import SYSTEM, AuditRecord
from ..core.breach import Assessment
from ..core.follow_up import LetterStep, plan_letters, take_step
from ..core.incidents import (
    Detection,
    Incident,
    IncidentError,
    RiskJudgement,
    Stage,
    absorb,
    advance,
    assign,
    correlate,
    merge_related,
    open_incident,
    summary,
)
from ..core.letters import Letter, LetterKind
from ..state.base import StateStore
from ..state.errors import StateError

log = logging.getLogger(__name__)

TRIES = 20
"""Saves retried while other writers keep changing the same incident."""


def new_incident_id(now: float) -> str:
    """``INC-20261127-3f9a1c``: the day it was opened, then random (unique without a counter
    shared between processes)."""
    day = datetime.fromtimestamp(now, UTC).strftime("%Y%m%d")
    return f"INC-{day}-{secrets.token_hex(3)}"


class IncidentNotFound(LookupError):
    pass


class IncidentBook:
    def __init__(
        self,
        store: StateStore,
        *,
        clock: Callable[[], float] = time.time,
        new_id: Callable[[float], str] = new_incident_id,
        team: str = "",
    ) -> None:
        self.store = store
        self.clock = clock
        self.new_id = new_id
        self.team = team
        """The team new incidents are given (the policy's ``incidents.team``)."""

    # -- reading --------------------------------------------------------------------------------

    def get(self, incident_id: str) -> Incident:
        incident = self.store.get_incident(incident_id)
        if incident is None:
            raise IncidentNotFound(f"no incident {incident_id!r}")
        return incident

    def list(self, *, stage: Stage | None = None, open_only: bool = False) -> list[Incident]:
        found = self.store.list_incidents()
        if stage is not None:
            found = [i for i in found if i.stage == stage]
        if open_only:
            found = [i for i in found if i.is_open]
        return found

    # -- detections -----------------------------------------------------------------------------

    def record(self, detection: Detection, *, by: str = SYSTEM) -> tuple[Incident, bool]:
        """File ``detection``: it joins the open incident it shares a campaign, an account or a
        network with, or opens a new one. Returns (the incident, whether it was opened)."""
        return self._record(detection, None, by)

    def record_many(
        self, detections: Sequence[Detection], *, by: str = SYSTEM
    ) -> list[tuple[Incident, bool]]:
        """:meth:`record` for a batch: related findings are folded together first
        (:func:`~scrapewarden.core.incidents.merge_related`) and the open incidents are read
        once, not once per finding."""
        open_now = self.list(open_only=True)
        return [self._record(d, open_now, by) for d in merge_related(detections)]

    def _record(
        self, detection: Detection, open_now: list[Incident] | None, by: str
    ) -> tuple[Incident, bool]:
        for _ in range(TRIES):
            if open_now is None:
                open_now = self.list(open_only=True)
            now = self.clock()
            found = correlate(open_now, detection)
            if found is None:
                incident = self._new(detection, now, by)
                if self.store.save_incident(incident):
                    self._audit(now, by, "incident.open", incident.id, summary(incident))
                    open_now.append(incident)
                    return incident, True
            else:
                absorb(found, detection)
                if self.store.save_incident(found):
                    self._audit(now, by, "incident.join", found.id, _detection_summary(detection))
                    return found, False
            open_now[:] = self.list(open_only=True)  # another writer got there first: read again
        raise StateError(f"incident store kept changing; detection from {detection.source} not filed")

    def open(self, detection: Detection, *, by: str, title: str = "", note: str = "") -> Incident:
        """Open an incident by hand (no correlation: the person decided it is a new one)."""
        now = self.clock()
        incident = self._new(detection, now, by, title, note)
        if not self.store.save_incident(incident):
            raise StateError(f"incident id {incident.id} already taken")
        self._audit(now, by, "incident.open", incident.id, summary(incident))
        return incident

    def _new(self, detection: Detection, now: float, by: str, title: str = "", note: str = "") -> Incident:
        incident = open_incident(self.new_id(now), detection, at=now, by=by, title=title, note=note)
        incident.team = self.team
        return incident

    # -- handling -------------------------------------------------------------------------------

    def advance(self, incident_id: str, to: Stage | None, *, by: str, note: str = "") -> Incident:
        """Move the incident forward (to the next stage, or ``to``); raises IncidentError for a
        step the lifecycle does not allow."""

        def change(incident: Incident, now: float) -> dict[str, Any] | None:
            before = incident.stage
            step = advance(incident, to, at=now, by=by, note=note)
            return {"from": before, "to": step.stage, "note": note}

        return self._change(incident_id, change, by, "incident.advance")

    def assign(
        self, incident_id: str, *, owner: str | None = None, team: str | None = None, by: str
    ) -> Incident:
        def change(incident: Incident, now: float) -> dict[str, Any] | None:
            return assign(incident, owner=owner, team=team, at=now, by=by) or None

        return self._change(incident_id, change, by, "incident.assign")

    def judge(
        self,
        incident_id: str,
        high_risk: bool | None,
        *,
        by: str,
        note: str = "",
        assessment: Assessment | None = None,
    ) -> Incident:
        """Record the officer's risk judgement (audited as ``incident.assess``); with the
        ``assessment`` made under it, the letters it calls for are tracked from now on."""

        def change(incident: Incident, now: float) -> dict[str, Any] | None:
            before = incident.risk
            incident.risk = RiskJudgement(high_risk, now, by, note)
            planned = 0
            if assessment is not None:
                known = len(incident.letters)
                incident.letters = plan_letters(incident.id, assessment, incident.letters, now=now)
                planned = len(incident.letters) - known
            details: dict[str, Any] = {
                "high_risk": high_risk,
                "before": None if before is None else before.high_risk,
                "note": note,
                "letters_planned": planned,
            }
            if assessment is not None:
                details["people"] = assessment.people
                details["records"] = assessment.records
                details["regimes"] = [j.regime for j in assessment.jurisdictions]
            return details

        return self._change(incident_id, change, by, "incident.assess")

    def letter(
        self,
        incident_id: str,
        kind: LetterKind,
        step: LetterStep,
        *,
        by: str,
        which: str = "",
        note: str = "",
        reply_days: float | None = None,
    ) -> tuple[Incident, Letter]:
        """Record a step on one of the incident's letters (``letter.sent``, ``letter.replied``,
        ``deletion.confirmed`` in the audit log). Raises LetterError for a step that does not
        fit (confirming a letter never sent...)."""
        changed: list[Letter] = []

        def change(incident: Incident, now: float) -> dict[str, Any] | None:
            incident.letters, letter, action = take_step(
                incident.letters,
                incident.id,
                kind,
                step,
                at=now,
                by=by,
                which=which,
                note=note,
                reply_days=reply_days,
            )
            changed[:] = [letter]
            return {
                "_action": action,
                "letter": letter.id,
                "kind": kind,
                "recipient": letter.recipient,
                "state": letter.state,
                "note": note,
                "reply_due_at": letter.reply_due_at,
            }

        incident = self._change(incident_id, change, by, "letter")
        return incident, changed[0]

    def _change(
        self,
        incident_id: str,
        change: Callable[[Incident, float], dict[str, Any] | None],
        by: str,
        action: str,
    ) -> Incident:
        for _ in range(TRIES):
            incident = self.get(incident_id)
            now = self.clock()
            details = change(incident, now)
            if details is None:
                return incident  # nothing changed: nothing to save or audit
            if self.store.save_incident(incident):
                # A change may name its own action (a letter step: sent, replied, confirmed).
                self._audit(now, by, details.pop("_action", action), incident.id, details)
                return incident
        raise StateError(f"incident {incident_id} kept changing; {action} not saved")

    def _audit(self, now: float, by: str, action: str, target: str, details: dict[str, Any]) -> None:
        self.store.append_audit(AuditRecord(now, by, action, target, details))


def _detection_summary(detection: Detection) -> dict[str, Any]:
    a = detection.actors
    return {
        "source": detection.source,
        "verdict": detection.verdict,
        "campaign": detection.campaign,
        "addresses": len(a.ips) + a.more,
        "accounts": len(a.accounts),
        "records": detection.records_count or len(detection.records),
        "detectors": sorted(detection.detectors),
    }


__all__ = ["IncidentBook", "IncidentError", "IncidentNotFound", "new_incident_id"]
