"""One incident's evidence bundle, written and audited: ``scrapewarden incidents export`` and the
dashboard's export button both call :func:`export_incident`.

It works the duties out afresh (people, assessment, drafts; :mod:`.duties`), adds the incident's
audit trail with the chain's head at the time, writes the zip (:mod:`.bundle`), and appends the
``incident.export`` audit entry with the zip's and the manifest's SHA-256. The bundle holds
personal data of the people affected: whoever calls this decides who may.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..core.audit import AuditRecord
from ..core.incidents import Incident
from ..core.policy import Policy
from ..state.audit import entries
from ..state.base import StateStore
from .bundle import Exported, bundle_files, export_bundle
from .drafts import Operator
from .duties import Duties, work_out
from .facts import facts_from_incident_dict


class ExportWriteError(Exception):
    """The zip could not be written (a full disk, a folder that is not there)."""


@dataclass(frozen=True, slots=True)
class Export:
    done: Exported
    duties: Duties


def audit_trail(store: StateStore, incident_id: str) -> bytes:
    """The audit entries about this incident and the chain's head when exported: with the
    head written down elsewhere, anyone can later check these entries are still in the chain."""
    mine = [e.as_dict() for e in entries(store) if e.target == incident_id]
    head = store.audit_head()
    data = {
        "incident": incident_id,
        "entries": mine,
        "head": None if head is None else {"seq": head[0], "hash": head[1]},
    }
    return (json.dumps(data, sort_keys=True, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def export_incident(
    store: StateStore,
    incident: Incident,
    policy: Policy,
    out: Path,
    *,
    by: str,
    now: float,
    base_dir: str | Path = ".",
    operator: Operator | None = None,
    name: str = "",
) -> Export:
    """Write ``incident``'s bundle to ``out`` and audit it as done by ``by`` (``name``: the file
    name to record, default ``out``'s). Raises what :data:`.duties.WORK_OUT_ERRORS` lists when
    the duties cannot be worked out, ExportWriteError when the zip cannot be written."""
    facts = facts_from_incident_dict(incident.to_dict())
    duties = work_out(
        facts,
        policy,
        drafted_at=now,
        base_dir=base_dir,
        high_risk=incident.risk.high_risk if incident.risk else None,
        operator=operator,
    )
    files = bundle_files(
        duties.facts, duties.found.exposure, duties.assessment, duties.drafts, letters=incident.letters
    )
    files["audit_trail.json"] = audit_trail(store, incident.id)
    try:
        done = export_bundle(out, files, incident_id=incident.id)
    except OSError as exc:
        raise ExportWriteError(f"cannot write {out}: {exc.strerror or exc}") from None
    store.append_audit(
        AuditRecord(
            now,
            by,
            "incident.export",
            incident.id,
            {
                "file": name or out.name,
                "files": done.files,
                "manifest_sha256": done.manifest_sha256,
                "zip_sha256": done.zip_sha256,
                "people": duties.assessment.people,
                "records": duties.assessment.records,
            },
        )
    )
    return Export(done, duties)
