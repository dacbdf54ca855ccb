"""Evidence bundle: one zip to hand to lawyers or a regulator, with a manifest that proves it whole.

The zip holds ``evidence.json`` (the incident's facts, the people exposure, the breach assessment
and the letters' tracking records), ``exposed_records.csv``, ``affected_people.csv``, the drafts
under ``drafts/``, and ``manifest.json``, which lists the SHA-256 and size of every other file.
:func:`verify_bundle` recomputes them and names each file that changed, went missing or was
slipped in.

Two exports of the same incident are byte-identical: entries are written in name order, with a
fixed timestamp and permissions, and JSON with sorted keys. So the SHA-256 of the whole zip (or of
its manifest, which :func:`export_bundle` returns) can be written in a letter or a log, and
anyone can check later that the bundle they hold is the one that was sent.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.breach import NOT_LEGAL_ADVICE, Assessment
from ..core.exposure import Exposure
from ..core.letters import Letter
from .drafts import Drafts, csv_text
from .facts import IncidentFacts

FORMAT = "scrapewarden-evidence-bundle/1"
MANIFEST = "manifest.json"
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip can hold: no clock leaks in


@dataclass(frozen=True, slots=True)
class Exported:
    path: Path
    files: int
    manifest_sha256: str
    zip_sha256: str


@dataclass(slots=True)
class BundleCheck:
    ok: bool
    problems: list[str] = field(default_factory=list)
    """One line per problem: ``changed: drafts/letters/cease_and_desist.txt`` ..."""
    files: int = 0


def bundle_files(
    facts: IncidentFacts,
    exposure: Exposure,
    assessment: Assessment,
    drafts: Drafts | Mapping[str, str],
    *,
    letters: Sequence[Letter] = (),
) -> dict[str, bytes]:
    """Every file of the bundle but the manifest, name -> bytes."""
    evidence = {
        "format": FORMAT,
        "disclaimer": NOT_LEGAL_ADVICE,
        "incident": facts.to_dict(),
        "exposure": exposure.to_dict(),
        "assessment": assessment.to_dict(),
        "letters": [letter.to_dict() for letter in letters],
    }
    records = [
        {
            "kind": r.kind,
            "record_id": r.id,
            "person_id": exposure.owners[r].id if r in exposure.owners else "",
            "found": "yes" if r in exposure.owners else "no",
        }
        for r in exposure.records
    ]
    people = [
        {**p.person.to_dict(), "records": len(p.records), "categories": "; ".join(p.categories)}
        for p in exposure.people
    ]
    people = [{("person_id" if k == "id" else k): v for k, v in row.items()} for row in people]
    files: dict[str, bytes] = {
        "evidence.json": _json(evidence),
        "exposed_records.csv": csv_text(["kind", "record_id", "person_id", "found"], records).encode(),
        "affected_people.csv": csv_text(
            ["person_id", "name", "email", "language", "country", "records", "categories"], people
        ).encode(),
    }
    texts = drafts.files() if isinstance(drafts, Drafts) else dict(drafts)
    for name, text in texts.items():
        files[f"drafts/{name}"] = text.encode("utf-8")
    return files


def export_bundle(path: str | Path, files: Mapping[str, bytes], *, incident_id: str) -> Exported:
    """Write ``files`` and their manifest to the zip at ``path`` (atomically: a reader never sees
    half a bundle)."""
    for name in files:
        if name == MANIFEST or name.startswith("/") or ".." in name.split("/"):
            raise ValueError(f"unsafe name for a bundle entry: {name!r}")
    manifest = {
        "format": FORMAT,
        "incident": incident_id,
        "algorithm": "sha256",
        "files": [
            {"name": name, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
            for name, data in sorted(files.items())
        ],
        "disclaimer": NOT_LEGAL_ADVICE,
    }
    manifest_bytes = _json(manifest)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(prefix=".bundle-", suffix=".zip", dir=target.parent)
    try:
        with os.fdopen(handle, "wb") as raw, zipfile.ZipFile(raw, "w") as archive:
            for name, data in [(MANIFEST, manifest_bytes), *sorted(files.items())]:
                archive.writestr(_entry(name), data, compresslevel=6)
        os.replace(temp, target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return Exported(
        path=target,
        files=len(files),
        manifest_sha256=hashlib.sha256(manifest_bytes).hexdigest(),
        zip_sha256=hashlib.sha256(target.read_bytes()).hexdigest(),
    )


def verify_bundle(path: str | Path) -> BundleCheck:
    """Recompute every file's SHA-256 against the manifest; list what does not match."""
    problems: list[str] = []
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        return BundleCheck(False, [f"cannot open the bundle: {exc}"])
    with archive:
        names = [info.filename for info in archive.infolist()]
        present = set(names)  # a set: a bundle can hold 200,000 drafts, and a list lookup is linear
        if MANIFEST not in present:
            return BundleCheck(False, ["missing: manifest.json"])
        try:
            manifest = json.loads(archive.read(MANIFEST))
            listed = {str(f["name"]): (str(f["sha256"]), int(f["bytes"])) for f in manifest["files"]}
        except (ValueError, KeyError, TypeError):
            return BundleCheck(False, ["manifest.json is not a valid manifest"])
        for name, (digest, size) in sorted(listed.items()):
            if name not in present:
                problems.append(f"missing: {name}")
                continue
            try:
                data = archive.read(name)
            except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
                # A damaged entry: its compressed stream no longer inflates, or its CRC fails.
                problems.append(f"unreadable: {name} ({exc})")
                continue
            if hashlib.sha256(data).hexdigest() != digest or len(data) != size:
                problems.append(f"changed: {name}")
        for name in sorted(present - set(listed) - {MANIFEST}):
            problems.append(f"not in manifest: {name}")
        if len(names) != len(present):
            problems.append("an entry name appears more than once")
    return BundleCheck(not problems, problems, len(listed))


def _entry(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=_FIXED_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.create_system = 3  # Unix, wherever it is made, so the bytes do not depend on the platform
    info.external_attr = 0o644 << 16
    return info


def _json(value: Any) -> bytes:
    return (json.dumps(value, sort_keys=True, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
