"""`scrapewarden incidents assess|letters|letter|overdue|export|verify-bundle` on a SQLite store,
with a CSV people lookup: the judgement and each letter step stored with the incident and
audited; overdue letters flagged; the export's letters quote real addresses only when the policy
stores them (pseudonymisation off)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from scrapewarden.cli.main import main
from scrapewarden.core.breach import NOT_LEGAL_ADVICE
from scrapewarden.state.audit import entries, verify_store
from scrapewarden.state.sqlite import SQLiteStore

DAY = 86400.0
PEOPLE_CSV = """record_id,person_id,kind,name,email,language,country
1,u1,profile,Ada Lovelace,ada@example.org,en,GB
2,u2,profile,Émile Zola,emile@example.fr,fr,FR
3,u3,profile,Joni Mitchell,joni@example.ca,en-CA,CA
"""


def write_policy(folder: Path, *, pseudonymize: bool = True) -> Path:
    (folder / "people.csv").write_text(PEOPLE_CSV, encoding="utf-8")
    policy = folder / "policy.toml"
    policy.write_text(
        f"""
[[protected]]
pattern = "/users/{{id}}"
kind = "profile"
categories = ["name", "email"]

[privacy]
pseudonymize = {"true" if pseudonymize else "false"}
key = "a test key that is long enough"

[incidents.people]
source = "csv"
path = "people.csv"

[incidents.notices]
organisation = "Example Social Ltd"
website = "example.org"
""",
        encoding="utf-8",
    )
    return policy


def run(db: Path, *args: str, user: str = "dana") -> Result:
    env = {"COLUMNS": "200", "SCRAPEWARDEN_STATE": f"sqlite:///{db}", "SCRAPEWARDEN_USER": user}
    return CliRunner(env=env).invoke(main, list(args), catch_exceptions=False)


def open_incident(db: Path, policy: Path) -> str:
    result = run(
        db,
        "incidents",
        "open",
        "--title",
        "profile scraper",
        "--ip",
        "203.0.113.7",
        *(
            "--record",
            "profile:1",
            "--record",
            "profile:2",
            "--record",
            "profile:3",
            "--record",
            "profile:404",
        ),
        "--policy",
        str(policy),
    )
    assert result.exit_code == 0, result.output
    return result.output.split()[1].rstrip(":")


def backdate(db: Path, incident_id: str, days: float) -> None:
    """Make the incident look opened ``days`` ago (the clocks start at opening)."""
    store = SQLiteStore(db)
    try:
        incident = store.get_incident(incident_id)
        assert incident is not None
        incident.opened_at -= days * DAY
        assert store.save_incident(incident)
    finally:
        store.close()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "state.db"


def test_assess_records_the_judgement_and_plans_letters_that_become_overdue(db: Path, tmp_path: Path) -> None:
    policy = write_policy(tmp_path)
    incident = open_incident(db, policy)
    backdate(db, incident, 4)

    shown = run(db, "incidents", "assess", incident, "--policy", str(policy))
    assert shown.exit_code == 0, shown.output
    assert "risk judgement: none recorded" in shown.output
    assert "people affected: 3   records: 4   records with no person: 1" in shown.output
    assert NOT_LEGAL_ADVICE in shown.output.replace("\n", " ")
    assert run(db, "incidents", "letters", incident).output.startswith(f"{incident}: no letters tracked")

    judged = run(
        db,
        "incidents",
        "assess",
        incident,
        "--high-risk",
        "--note",
        "e-mail addresses",
        "--policy",
        str(policy),
    )
    assert judged.exit_code == 0, judged.output
    assert "risk judgement: HIGH risk, by dana" in judged.output
    assert "[gdpr] Notify the supervisory authority: due" in judged.output
    assert (
        "[uk-gdpr] Notify the ICO" in judged.output
        and "[pipeda] Report the breach to the OPC" in judged.output
    )

    listed = run(db, "incidents", "letters", incident)
    assert listed.output.count("OVERDUE") == 2, listed.output  # GDPR and UK GDPR: 72 hours gone
    assert "cease-and-desist" in listed.output and "deletion-demand" in listed.output
    late = run(db, "incidents", "overdue")
    assert late.exit_code == 1 and late.output.count("past the date it had to be sent") == 2, late.output

    assert (
        run(db, "incidents", "letter", incident, "--kind", "regulator", "--sent").exit_code == 1
    )  # which one?
    sent = run(db, "incidents", "letter", incident, "--kind", "regulator", "--sent", "--recipient", "uk-gdpr")
    assert sent.exit_code == 0 and "the Information Commissioner's Office (ICO): sent" in sent.output, (
        sent.output
    )
    run(db, "incidents", "letter", incident, "--kind", "regulator", "--sent", "--recipient", ":gdpr")
    assert run(db, "incidents", "overdue").exit_code == 0

    refused = run(db, "incidents", "letter", incident, "--kind", "deletion-demand", "--confirmed-deletion")
    assert refused.exit_code == 1 and "never sent" in refused.output
    demand = run(
        db, "incidents", "letter", incident, "--kind", "deletion-demand", "--sent", "--policy", str(policy)
    )
    assert "awaiting reply; reply due" in demand.output, demand.output
    done = run(
        db,
        "incidents",
        "letter",
        incident,
        "--kind",
        "deletion-demand",
        "--confirmed-deletion",
        "--note",
        "signed",
    )
    assert done.exit_code == 0 and "confirmed" in done.output

    as_json = json.loads(run(db, "incidents", "show", incident, "--json").output)
    assert as_json["risk"]["high_risk"] is True and as_json["risk"]["note"] == "e-mail addresses"
    states = {x["id"].split(":", 1)[1]: x["state"] for x in as_json["letters"]}
    assert states["deletion_demand"] == "confirmed" and states["regulator:gdpr"] == "sent"
    assert states["cease_and_desist"] == "draft"

    store = SQLiteStore(db)
    try:
        trail = [(e.actor, e.action) for e in entries(store) if e.target == incident]
        assert verify_store(store).ok
    finally:
        store.close()
    assert trail == [
        ("dana", "incident.open"),
        ("dana", "incident.assess"),
        ("dana", "letter.sent"),
        ("dana", "letter.sent"),
        ("dana", "letter.sent"),
        ("dana", "deletion.confirmed"),
    ]


@pytest.mark.parametrize("pseudonymize", [True, False])
def test_export_bundle_and_the_operator_letter(db: Path, tmp_path: Path, pseudonymize: bool) -> None:
    policy = write_policy(tmp_path, pseudonymize=pseudonymize)
    incident = open_incident(db, policy)
    bundle = tmp_path / "out" / "bundle.zip"
    result = run(
        db, "incidents", "export", incident, "--out", str(bundle), "--policy", str(policy), user="erin"
    )
    assert result.exit_code == 0, result.output
    with zipfile.ZipFile(bundle) as archive:
        letter = archive.read("drafts/letters/cease_and_desist.txt").decode()
        evidence = json.loads(archive.read("evidence.json"))
        trail = json.loads(archive.read("audit_trail.json"))
        records = archive.read("exposed_records.csv").decode()
    if pseudonymize:
        assert "203.0.113.7" not in letter and "ip~" not in letter
        assert "[the 1 address used, from our" in letter
    else:
        assert "    203.0.113.7\n" in letter
    assert evidence["assessment"]["people"] == 3 and "profile,404,,no" in records
    assert [e["action"] for e in trail["entries"]] == ["incident.open"] and trail["head"]["seq"] >= 1
    assert run(db, "incidents", "verify-bundle", str(bundle)).exit_code == 0

    store = SQLiteStore(db)
    try:
        last = list(entries(store))[-1]
    finally:
        store.close()
    assert (last.actor, last.action, last.target) == ("erin", "incident.export", incident)
    assert last.details["zip_sha256"] in result.output and last.details["people"] == 3


def test_verify_bundle_names_a_missing_file(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    policy = write_policy(tmp_path)
    incident = open_incident(db, policy)
    bundle = tmp_path / "b.zip"
    run(db, "incidents", "export", incident, "--out", str(bundle), "--policy", str(policy))
    cut = tmp_path / "cut.zip"
    with zipfile.ZipFile(bundle) as src, zipfile.ZipFile(cut, "w") as dst:
        for info in src.infolist():
            if info.filename != "affected_people.csv":
                dst.writestr(info, src.read(info.filename))
    result = run(db, "incidents", "verify-bundle", str(cut), "--json")
    assert result.exit_code == 1
    assert json.loads(result.output)["problems"] == ["missing: affected_people.csv"]
