"""Evidence bundle: a real zip, a manifest that verifies, byte-identical re-exports, tampering named."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from scrapewarden.core.breach import NOT_LEGAL_ADVICE
from scrapewarden.core.exposure import Record
from scrapewarden.core.letters import Letter, mark_sent
from scrapewarden.incidents.bundle import verify_bundle
from scrapewarden.incidents.duties import export, load_regimes, work_out
from scrapewarden.incidents.facts import Actor, IncidentFacts
from scrapewarden.policy_file import load_policy

DETECTED = datetime(2026, 11, 27, 18, 0, tzinfo=UTC).timestamp()

POLICY_TOML = '''
[[protected]]
pattern = "/users/{id}"
kind = "profile"
categories = ["name", "photo", "location"]

[incidents.people]
source = "sql"
database = "site.db"
query = """SELECT id AS record_id, 'person-' || id AS person_id, name, email, lang AS language, country
           FROM users WHERE id IN ({ids})"""
batch_size = 100

[incidents.notices]
organisation = "Example Social Ltd"
contact_name = "Dana Privacy"
contact_email = "privacy@example.org"
website = "example.org"
regimes_file = "regimes.toml"
'''

REGIMES_TOML = """
[regimes.br-lgpd]
name = "Brazil: LGPD"
authority = "the ANPD"
countries = ["BR"]
[[regimes.br-lgpd.duties]]
key = "authority"
what = "Notify the ANPD"
wording = "within three working days"
trigger = "high_risk"
source = "ANPD Resolution CD/ANPD 15/2024"
"""


@pytest.fixture
def site(tmp_path: Path) -> Path:
    (tmp_path / "policy.toml").write_text(POLICY_TOML, encoding="utf-8")
    (tmp_path / "regimes.toml").write_text(REGIMES_TOML, encoding="utf-8")
    with sqlite3.connect(tmp_path / "site.db") as db:
        db.execute(
            "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, email TEXT, lang TEXT, country TEXT)"
        )
        countries = ["FR", "GB", "CA", "AU", "BR"]
        db.executemany(
            "INSERT INTO users VALUES (?, ?, ?, ?, ?)",
            [
                (i, f"User {i}", f"u{i}@example.org", "fr" if i % 2 else "en", countries[i % 5])
                for i in range(1, 251)
            ],
        )
    return tmp_path


def _facts() -> IncidentFacts:
    return IncidentFacts(
        id="inc-42",
        title="Scraper on /users",
        detected_at=DETECTED,
        first_seen=DETECTED - 3600,
        last_seen=DETECTED - 5,
        actors=[Actor("address", "198.51.100.23"), Actor("user agent", "{{ 7*7 }}<script>")],
        detectors={"enumeration": ["ids 1..300 in order"]},
        records=[Record("profile", str(i)) for i in range(1, 301)],  # 50 ids are not in the site's data
        requests=300,
        samples=[{"ts": DETECTED - 100, "method": "GET", "path": "/users/7", "user_agent": "{{ 7*7 }}"}],
    )


def _duties(site: Path):
    policy = load_policy(site / "policy.toml", env={})
    return work_out(_facts(), policy, drafted_at=DETECTED + 3600, base_dir=site, high_risk=True)


def test_export_verify_and_contents(site: Path) -> None:
    duties = _duties(site)
    assert duties.found.exposure.people_count == 250 and len(duties.found.exposure.unknown) == 50
    assert {j.regime for j in duties.assessment.jurisdictions} == {
        "gdpr",
        "uk-gdpr",
        "pipeda",
        "au-ndb",
        "br-lgpd",
    }
    demand = Letter("L1", "inc-42", "deletion_demand", "Scrape Co", created_at=DETECTED)
    exported = export(
        duties, site / "out" / "bundle.zip", letters=[mark_sent(demand, DETECTED, "dana", reply_days=14)]
    )
    check = verify_bundle(exported.path)
    assert check.ok and check.problems == [] and check.files == exported.files

    with zipfile.ZipFile(exported.path) as archive:
        names = archive.namelist()
        assert names[0] == "manifest.json"
        manifest = json.loads(archive.read("manifest.json"))
        listed = {f["name"] for f in manifest["files"]}
        assert listed == set(names) - {"manifest.json"}
        assert {"evidence.json", "exposed_records.csv", "affected_people.csv"} <= listed
        assert "drafts/notices/mail_merge.csv" in listed and "drafts/letters/cease_and_desist.txt" in listed
        assert manifest["disclaimer"] == NOT_LEGAL_ADVICE
        evidence = json.loads(archive.read("evidence.json"))
        assert evidence["incident"]["actors"][1]["value"] == "{{ 7*7 }}<script>"
        assert evidence["assessment"]["people"] == 250 and evidence["letters"][0]["state"] == "awaiting reply"
        assert evidence["disclaimer"] == NOT_LEGAL_ADVICE
        records = list(csv.DictReader(io.StringIO(archive.read("exposed_records.csv").decode())))
        assert len(records) == 300
        assert records[0] == {"kind": "profile", "record_id": "1", "person_id": "person-1", "found": "yes"}
        assert records[-1]["found"] == "no" and records[-1]["person_id"] == ""
        people = list(csv.DictReader(io.StringIO(archive.read("affected_people.csv").decode())))
        assert len(people) == 250 and people[0]["categories"] == "name; photo; location"
        lgpd = next(n for n in names if "regulator_br-lgpd" in n)
        assert "To: the ANPD" in archive.read(lgpd).decode()


def test_two_exports_are_byte_identical(site: Path) -> None:
    first = export(_duties(site), site / "a.zip")
    second = export(_duties(site), site / "b.zip")
    assert (site / "a.zip").read_bytes() == (site / "b.zip").read_bytes()
    assert first.zip_sha256 == second.zip_sha256 and first.manifest_sha256 == second.manifest_sha256


def _rewrite(source: Path, target: Path, change) -> None:
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for info in old.infolist():
            data = change(info.filename, old.read(info.filename))
            if data is not None:
                new.writestr(info, data)


def test_editing_removing_or_adding_a_file_is_named(site: Path) -> None:
    exported = export(_duties(site), site / "bundle.zip")
    letter = "drafts/letters/deletion_demand.txt"

    edited = site / "edited.zip"
    _rewrite(exported.path, edited, lambda n, d: d.replace(b"14 days", b"90 days") if n == letter else d)
    check = verify_bundle(edited)
    assert not check.ok and check.problems == [f"changed: {letter}"]

    removed = site / "removed.zip"
    _rewrite(exported.path, removed, lambda n, d: None if n == "affected_people.csv" else d)
    assert verify_bundle(removed).problems == ["missing: affected_people.csv"]

    added = site / "added.zip"
    _rewrite(exported.path, added, lambda n, d: d)
    with zipfile.ZipFile(added, "a") as archive:
        archive.writestr("drafts/extra.txt", "slipped in")
    assert verify_bundle(added).problems == ["not in manifest: drafts/extra.txt"]

    (site / "junk.zip").write_bytes(b"not a zip")
    assert not verify_bundle(site / "junk.zip").ok


def test_flipped_byte_inside_the_zip_is_caught(site: Path) -> None:
    exported = export(_duties(site), site / "bundle.zip")
    raw = bytearray(exported.path.read_bytes())
    with zipfile.ZipFile(exported.path) as archive:
        info = archive.getinfo("evidence.json")
    # Damage the stored (compressed) bytes of one entry, leaving the zip's directory intact.
    raw[info.header_offset + 30 + len(info.filename) + 10] ^= 0xFF
    (site / "flipped.zip").write_bytes(bytes(raw))
    check = verify_bundle(site / "flipped.zip")
    assert not check.ok and len(check.problems) == 1 and "evidence.json" in check.problems[0]


def test_regimes_file_problems_are_clear(site: Path) -> None:
    (site / "bad.toml").write_text("[regimes.x]\nname = 'X'\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad\.toml: regimes\.x\.duties: must be a non-empty list"):
        load_regimes(site / "bad.toml")
