"""Letter drafts: content from the evidence, languages, overrides, and hostile strings kept inert."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from pathlib import Path

import pytest

from scrapewarden.core.breach import NOT_LEGAL_ADVICE, assess
from scrapewarden.core.exposure import Owner, Person, Record, map_exposure
from scrapewarden.core.policy import NoticePolicy
from scrapewarden.incidents.drafts import Drafter, Operator, csv_cell, plain, safe_name
from scrapewarden.incidents.facts import Actor, IncidentFacts, facts_from_incident_dict

DETECTED = datetime(2026, 11, 27, 18, 0, tzinfo=UTC).timestamp()
EVIL_UA = "{{ 7*7 }} <script>alert(1)</script>\r\nSubject: pay us"
NOTICES = NoticePolicy(
    organisation="Example Social Ltd",
    contact_name="Dana Privacy",
    contact_email="privacy@example.org",
    contact_address="1 Example Street, Lyon",
    website="example.org",
    deletion_days=14,
)


def _facts() -> IncidentFacts:
    records = [Record("profile", str(i)) for i in range(1, 5)]
    return IncidentFacts(
        id="inc-7",
        title="Enumeration of /users/{id}",
        detected_at=DETECTED,
        first_seen=DETECTED - 2 * 3600,
        last_seen=DETECTED - 60,
        actors=[
            Actor("address", "203.0.113.9"),
            Actor("user agent", EVIL_UA),
            Actor("account", "acct-{% x %}"),
        ],
        detectors={"enumeration": ["sequential ids 1..4"], "budgets": ["400 profiles in an hour"]},
        records=records,
        requests=812,
        samples=[{"ts": DETECTED - 600, "method": "GET", "path": "/users/{{ 7*7 }}", "ip": "203.0.113.9"}],
    )


def _people():
    facts = _facts()
    owners = {
        facts.records[0]: Owner(Person("p1", "Ada Lovelace", "ada@example.org", "en-GB", "GB"), ("email",)),
        facts.records[1]: Owner(Person("p2", "Émile Zola", "emile@example.fr", "fr-CA", "CA")),
        facts.records[2]: Owner(Person("p3", "<b>Mallory</b> {{ 7*7 }}", "=cmd|' /C calc'!A0", "de", "FR")),
    }
    exposure = map_exposure(facts.records, owners, {"profile": ("name", "photo")})
    return facts, exposure, assess(exposure, DETECTED)


def _render(notices: NoticePolicy = NOTICES, **kwargs):
    facts, exposure, assessment = _people()
    drafter = Drafter(notices, **kwargs)
    return drafter.render_all(
        facts,
        exposure,
        assessment,
        drafted_at=DETECTED + 3600,
        operator=Operator("Scrape Co", "scrape.example"),
    )


def test_each_person_gets_a_notice_in_their_language() -> None:
    drafts = _render()
    files = drafts.files()
    ada = files[f"notices/{safe_name('p1')}.en.txt"]
    assert "Dear Ada Lovelace," in ada
    assert "It received 1 page showing:" in ada
    assert "your name" in ada and "your profile photo" in ada and "your e-mail address" in ada
    assert "2026-11-27 16:00 UTC" in ada  # first seen
    assert "Dana Privacy, privacy@example.org" in ada
    assert NOT_LEGAL_ADVICE in ada  # the reviewer's note
    emile = files[f"notices/{safe_name('p2')}.fr.txt"]  # fr-CA -> fr
    assert "Bonjour Émile Zola," in emile and "votre photo de profil" in emile
    assert drafts.languages == {"en": 2, "fr": 1}  # "de" has no template: the default, English
    assert f"notices/{safe_name('p3')}.en.txt" in files


def test_mail_merge_csv_has_one_row_per_person_and_no_formulas() -> None:
    rows = list(csv.DictReader(io.StringIO(_render().mail_merge_csv)))
    assert [r["person_id"] for r in rows] == ["p1", "p2", "p3"]
    assert rows[1]["language"] == "fr" and rows[1]["subject"].startswith("Vos informations")
    assert rows[0]["body"].startswith("Dear Ada Lovelace,")
    assert NOT_LEGAL_ADVICE not in rows[0]["body"]  # the body is what gets sent, after review
    assert rows[2]["email"].startswith("'=")  # a spreadsheet shows it, never runs it


def test_operator_letters_say_who_what_when() -> None:
    files = _render().files()
    cease = files["letters/cease_and_desist.txt"]
    assert cease.splitlines()[2] == "Scrape Co"
    assert "made 812 requests" in cease and "retrieved 4" in cease
    assert "203.0.113.9" in cease and "sequential ids 1..4" in cease and "400 profiles in an hour" in cease
    assert "2026-11-27 16:00 UTC" in cease and "2026-11-27 17:59 UTC" in cease
    assert "by 2026-12-04 19:00 UTC (7 days" in cease
    deletion = files["letters/deletion_demand.txt"]
    assert "by 2026-12-11 19:00 UTC (14 days" in deletion  # drafted at 19:00 + 14 days
    assert "about 3 of our users" in deletion
    assert "name: 4 records, 3 people" in deletion
    assert "email: 1 record, 1 person" in deletion
    for text in (cease, deletion):
        assert NOT_LEGAL_ADVICE in text and "DRAFT for incident inc-7" in text


def test_one_regulator_report_per_regime_with_its_deadline() -> None:
    files = _render().files()
    names = sorted(n for n in files if n.startswith("letters/regulator_"))
    assert [n.split("_")[1].rsplit("-", 1)[0] for n in names] == ["gdpr", "pipeda", "uk-gdpr"]
    gdpr = next(files[n] for n in names if "regulator_gdpr" in n)
    assert "To: the competent supervisory authority" in gdpr
    assert "People concerned: 1 in FR (3 in total)" in gdpr
    assert "due 2026-11-30 18:00 UTC (GDPR art. 33(1))" in gdpr
    pipeda = next(files[n] for n in names if "pipeda" in n)
    assert "as soon as feasible" in pipeda and "Office of the Privacy Commissioner of Canada" in pipeda


def test_hostile_strings_show_literally() -> None:
    files = _render().files()
    cease = files["letters/cease_and_desist.txt"]
    assert '"{{ 7*7 }} <script>alert(1)</script>\\x0d\\x0aSubject: pay us"' in cease
    assert "49" not in cease
    assert "\nSubject: pay us" not in cease  # no line of the letter was forged
    assert "GET /users/{{ 7*7 }}" in cease and "acct-{% x %}" in cease
    html = files[f"notices/{safe_name('p3')}.en.html"]
    assert "Dear &lt;b&gt;Mallory&lt;/b&gt; {{ 7*7 }}," in html
    assert "<b>Mallory" not in html
    text = files[f"notices/{safe_name('p3')}.en.txt"]
    assert "Dear <b>Mallory</b> {{ 7*7 }}," in text  # plain text: shown as written


def test_templates_directory_overrides_file_by_file(tmp_path: Path) -> None:
    (tmp_path / "notice.de.txt.j2").write_text(
        "Subject: Ihre Daten\nHallo {{ person.name }}, {{ count(person.records, 'Seite', 'Seiten') }}.\n",
        encoding="utf-8",
    )
    (tmp_path / "cease_and_desist.en.txt.j2").write_text(
        "Subject: Stop\nTo {{ operator.name }}: stop by {{ response_due | utc }}.\n", encoding="utf-8"
    )
    drafts = _render(templates_dir=tmp_path)
    files = drafts.files()
    assert files[f"notices/{safe_name('p3')}.de.txt"].endswith("Hallo <b>Mallory</b> {{ 7*7 }}, 1 Seite.\n")
    assert files["letters/cease_and_desist.txt"].endswith("To Scrape Co: stop by 2026-12-04 19:00 UTC.\n")
    assert "Dear Ada Lovelace," in files[f"notices/{safe_name('p1')}.en.txt"]  # not overridden
    assert drafts.languages == {"en": 1, "fr": 1, "de": 1}


def test_templates_cannot_reach_python(tmp_path: Path) -> None:
    (tmp_path / "cease_and_desist.en.txt.j2").write_text(
        "Subject: x\n{{ operator.__class__.__mro__ }}\n", encoding="utf-8"
    )
    with pytest.raises(Exception, match=r"unsafe|__class__|undefined"):
        _render(templates_dir=tmp_path)


def test_blank_settings_become_visible_placeholders() -> None:
    facts, exposure, assessment = _people()
    drafts = Drafter(NoticePolicy()).render_all(facts, exposure, assessment, drafted_at=DETECTED)
    cease = drafts.files()["letters/cease_and_desist.txt"]
    assert "[name of the operator]" in cease and "[organisation]" in cease


def test_helpers() -> None:
    assert plain("a\x1b[31mb\u202ec") == "a\\x1b[31mb\\u202ec"
    assert plain("Émile 日本") == "Émile 日本"
    assert csv_cell("+1") == "'+1" and csv_cell("Ada") == "Ada"
    assert safe_name("../etc/passwd") != safe_name("..-etc-passwd")
    assert "/" not in safe_name("../etc/passwd")


def test_facts_from_a_stored_incident() -> None:
    facts = facts_from_incident_dict(
        {
            "id": "i1",
            "title": "t",
            "opened_at": 100.0,
            "first_seen": 50.0,
            "last_seen": 90.0,
            "actors": {"ips": ["198.51.100.1"], "user_agents": ["curl/8"], "more": 0},
            "detectors": {"enumeration": {"count": 3, "first": 1, "last": 2, "reasons": ["seq"]}},
            "records": ["profile:1", "profile:2"],
            "records_count": 5,
            "requests": 9,
            "samples": [{"ts": 60.0, "path": "/users/1"}],
        }
    )
    assert facts.actors == [Actor("address", "198.51.100.1"), Actor("user agent", "curl/8")]
    assert facts.detectors == {"enumeration": ["seq"]}
    assert facts.records == [Record("profile", "1"), Record("profile", "2")]
    assert facts.to_dict()["records_count"] == 5 and facts.detected_at == 100.0


def test_a_letter_never_claims_fewer_requests_than_pages_retrieved() -> None:
    """The incident's request count is of the requests refused; when it is smaller than the pages
    served (a scraper stopped after a few refusals), the letter speaks of pages only."""
    facts, exposure, assessment = _people()
    facts.requests = 1
    drafter = Drafter(NOTICES)
    drafts = drafter.render_all(facts, exposure, assessment, drafted_at=DETECTED + 3600)
    cease = drafts.files()["letters/cease_and_desist.txt"]
    assert "made 1 request" not in cease
    assert "retrieved 4\npages showing" in cease
