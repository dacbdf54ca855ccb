"""The incident page's duties over loopback HTTP, on an incident filed by real traffic: the people
affected (from a CSV lookup, escaped, paged), the breach assessment as the CLI prints it, the
drafts (a notice in French, the operator letters), the letters' tracking and the evidence export.
Viewers read; analysts track letters, record the judgement and export; every change is an audit
entry with the user as actor."""

from __future__ import annotations

import io
import re
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from click.testing import CliRunner
from markupsafe import escape

from scrapewarden.cli.main import main
from scrapewarden.incidents.book import IncidentBook
from scrapewarden.incidents.bundle import verify_bundle
from scrapewarden.state.audit import entries, verify_store
from scrapewarden.state.sqlite import SQLiteStore
from scrapewarden.warden import Warden

from .conftest import CHROME, csrf_of, login, site_and_dashboard

SCRAPER = "203.0.113.50"
# Record 7 belongs to nobody the site knows; one name is hostile markup.
PEOPLE_CSV = (
    "record_id,person_id,kind,name,email,language,country\n"
    "1,u1,profile,Ada Lovelace,ada@example.org,en,GB\n"
    "2,u2,profile,Émile Zola,emile@example.fr,fr,FR\n"
    "3,u3,profile,Joni Mitchell,joni@example.ca,en-CA,CA\n"
    "4,u4,profile,<script>alert(1)</script>,x@example.org,en,FR\n"
    "5,u5,profile,Marie Curie,marie@example.fr,fr,FR\n"
    "6,u6,profile,Alan Turing,alan@example.org,en,GB\n"
)
POLICY = """\
[network]
trusted_proxies = ["127.0.0.0/8", "::1/128"]

[[protected]]
pattern = "/people/{id}"
kind = "profile"
categories = ["name", "email"]

[client]
inconsistent_browser = 0
missing_accept_language = 0

[limits.per_ip]
profiles_per_hour = 8

[incidents]
min_records = 5
refusal = "challenge"
interval_seconds = 1
on_campaign = false

[incidents.people]
source = "csv"
path = "people.csv"

[incidents.notices]
organisation = "Example Social Ltd"
website = "example.org"
"""


@dataclass
class DutySite:
    dash: str
    site: str
    state_url: str
    policy_file: Path
    site_warden: Warden

    @property
    def db(self) -> str:
        return self.state_url.removeprefix("sqlite:///")

    def scrape(self, count: int = 20) -> list[int]:
        """A scraper in Chrome's clothes walks profiles 1..count until the site stops it."""
        headers = {"x-forwarded-for": SCRAPER, "user-agent": CHROME, "accept": "text/html"}
        with httpx.Client(base_url=self.site, timeout=10, headers=headers) as client:
            return [client.get(f"/people/{i}").status_code for i in range(1, count + 1)]

    def file_incident(self) -> str:
        """Past the filing interval, one more refused request lets the Warden file what it
        counted (off the request path); the incident's id."""
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            time.sleep(1.1)
            self.scrape(1)
            self.site_warden.settle_incidents()
            with SQLiteStore(self.db) as store:
                found = IncidentBook(store).list()
            if found:
                assert len(found) == 1, [i.title for i in found]
                return found[0].id
        raise AssertionError("no incident filed")


@contextmanager
def duty_site(tmp_path: Path) -> Iterator[DutySite]:
    """A protected site and the dashboard on one SQLite store, both with the policy above."""
    (tmp_path / "people.csv").write_text(PEOPLE_CSV, encoding="utf-8")
    with site_and_dashboard(tmp_path, POLICY) as (dash, site, state_url, policy_file, site_warden):
        yield DutySite(dash.url, site.url, state_url, policy_file, site_warden)


def _audit(site: DutySite) -> list[tuple[str, str, str]]:
    with SQLiteStore(site.db) as store:
        assert verify_store(store).ok
        return [(e.actor, e.action, e.target) for e in entries(store)]


def test_people_assessment_drafts_letters_and_export(tmp_path: Path) -> None:
    with duty_site(tmp_path) as site:
        codes = site.scrape()
        served = codes.index(next(c for c in codes if c != 200))
        assert 5 <= served <= 8 and codes[-1] != 200, codes
        incident = site.file_incident()
        people_served = min(served, 6)  # record 7 has no person

        with login(site.dash, "vic") as vic:
            page = vic.get(f"/incidents/{incident}")
            assert page.status_code == 200
            html = page.text
            # People: as the lookup gives them, escaped; the record with no person said.
            assert f'id="people-count">{people_served}<' in html
            assert f'id="exposed-count">{served}<' in html
            assert "Ada Lovelace" in html and "Émile Zola" in html
            assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
            # The assessment, line for line as `scrapewarden incidents assess` prints it.
            cli = CliRunner().invoke(
                main,
                [
                    "incidents",
                    "assess",
                    incident,
                    "--policy",
                    str(site.policy_file),
                    "--state",
                    site.state_url,
                ],
            )
            assert cli.exit_code == 0, cli.output
            for line in cli.output.splitlines()[2:]:  # after the title and the judgement lines
                assert html_of(line) in html, line
            assert "EU/EEA General Data Protection Regulation" in html and "GDPR art. 33(1)" in html
            # A draft: the first person's notice by default; the French notice on request.
            assert 'id="draft-text"' in html and "Ada Lovelace" in _between(html, 'id="draft-text"', "</pre>")
            fr = vic.get(f"/incidents/{incident}", params={"draft": "notice", "person": "u2"}).text
            assert "Bonjour Émile Zola," in _between(fr, 'id="draft-text"', "</pre>")
            forced = vic.get(
                f"/incidents/{incident}", params={"draft": "notice", "person": "u2", "lang": "en"}
            )
            assert "Dear Émile Zola," in _between(forced.text, 'id="draft-text"', "</pre>")
            cease = vic.get(
                f"/incidents/{incident}", params={"draft": "cease_and_desist", "operator": "<b>Op</b>"}
            )
            body = _between(cease.text, 'id="draft-text"', "</pre>")
            assert "Example Social Ltd" in body and "&lt;b&gt;Op&lt;/b&gt;" in body and "<b>Op" not in body
            # A viewer changes nothing: no forms, and the routes refuse.
            assert (
                'id="judge"' not in html
                and 'id="track-letter"' not in html
                and 'id="export-form"' not in html
            )
            token = csrf_of(html)
            for path, form in (
                ("judge", {"risk": "high"}),
                ("letters", {"kind": "cease-and-desist", "step": "sent"}),
                ("export", {}),
            ):
                answer = vic.post(f"/incidents/{incident}/{path}", data={"csrf": token, **form})
                assert answer.status_code == 403, path

        backdate(site, incident, days=4)  # the 72-hour clocks have run out
        with login(site.dash, "ana") as ana:
            token = csrf_of(ana.get(f"/incidents/{incident}").text)
            assert (
                ana.post(f"/incidents/{incident}/judge", data={"risk": "high"}).status_code == 403
            )  # no CSRF
            judged = ana.post(
                f"/incidents/{incident}/judge", data={"csrf": token, "risk": "high", "note": "names"}
            )
            assert judged.status_code == 303
            html = ana.get(f"/incidents/{incident}").text
            assert "risk judgement: HIGH risk, by ana" in html
            rows = _letter_rows(html)
            assert {"regulator", "notice", "cease-and-desist", "deletion-demand"} <= {r[0] for r in rows}
            # GDPR and UK GDPR: a report to the authority not sent 72 hours after detection.
            assert 'id="overdue" role="alert">2 overdue.' in html
            assert html.count("past the date it had to be sent") == 2
            assert html.count('<tr class="late">') == 2  # the two clocks in the deadlines table
            notice_id = f"{incident}:notice"
            sent = ana.post(
                f"/incidents/{incident}/letters",
                data={
                    "csrf": token,
                    "kind": "notice",
                    "step": "sent",
                    "which": notice_id,
                    "note": "by e-mail",
                },
            )
            assert sent.status_code == 303
            demand = ana.post(
                f"/incidents/{incident}/letters",
                data={
                    "csrf": token,
                    "kind": "deletion_demand",
                    "step": "sent",
                    "which": f"{incident}:deletion_demand",
                },
            )
            assert demand.status_code == 303
            confirmed = ana.post(
                f"/incidents/{incident}/letters",
                data={
                    "csrf": token,
                    "kind": "deletion-demand",
                    "step": "confirmed-deletion",
                    "note": "all gone",
                },
            )
            assert confirmed.status_code == 303
            again = ana.post(
                f"/incidents/{incident}/letters",
                data={"csrf": token, "kind": "notice", "step": "sent", "which": notice_id},
            )
            assert again.status_code == 400 and "already sent" in again.text
            wrong = ana.post(
                f"/incidents/{incident}/letters", data={"csrf": token, "kind": "poem", "step": "sent"}
            )
            assert wrong.status_code == 400
            html = ana.get(f"/incidents/{incident}").text
            states = {r[0]: r[1] for r in _letter_rows(html)}
            assert states["notice"] == "sent" and states["deletion-demand"] == "confirmed"
            assert "all gone" in html and "sent" in states.values()

            exported = ana.post(
                f"/incidents/{incident}/export", data={"csrf": token, "operator": "Scrape Co"}
            )
            assert exported.status_code == 200 and exported.headers["content-type"] == "application/zip"
            assert "attachment" in exported.headers["content-disposition"]
        bundle = tmp_path / "download.zip"
        bundle.write_bytes(exported.content)
        check = verify_bundle(bundle)
        assert check.ok, check.problems
        with zipfile.ZipFile(io.BytesIO(exported.content)) as archive:
            people_csv = archive.read("affected_people.csv").decode()
            assert "Scrape Co" in archive.read("drafts/letters/cease_and_desist.txt").decode()
        assert {line.split(",")[0] for line in people_csv.splitlines()[1:]} == {
            f"u{i}" for i in range(1, people_served + 1)
        }

        audit = _audit(site)
        mine = [
            (actor, action) for actor, action, target in audit if target == incident and actor != "system"
        ]
        assert mine == [
            ("ana", "incident.assess"),
            ("ana", "letter.sent"),
            ("ana", "letter.sent"),
            ("ana", "deletion.confirmed"),
            ("ana", "incident.export"),
        ]


def test_people_are_paged_and_a_broken_lookup_is_said_not_crashed(tmp_path: Path) -> None:
    with duty_site(tmp_path) as site:
        from scrapewarden.core.incidents import Actors, Detection

        with SQLiteStore(site.db) as store:
            csv_rows = "".join(
                f"{i},p{i},profile,Person {i},p{i}@example.org,en,GB\n" for i in range(100, 220)
            )
            (tmp_path / "people.csv").write_text(PEOPLE_CSV + csv_rows, encoding="utf-8")
            detection = Detection(
                ts=time.time(),
                source="manual",
                verdict="block",
                actors=Actors(ips=["ip~0123abcd"]),
                records=[f"profile:{i}" for i in range(100, 220)],
            )
            incident = IncidentBook(store).open(detection, by="system", title="many").id
        with login(site.dash, "vic") as vic:
            first = vic.get(f"/incidents/{incident}").text
            assert 'id="people-count">120<' in first and "Page 1 of 3" in first
            assert "Person 100<" in first and "Person 150<" not in first
            third = vic.get(f"/incidents/{incident}", params={"people_page": "3"}).text
            assert "Page 3 of 3" in third and "Person 219<" in third and "Person 100<" not in third
            assert vic.get(f"/incidents/{incident}", params={"people_page": "x"}).status_code == 200
            (tmp_path / "people.csv").unlink()
            broken = vic.get(f"/incidents/{incident}")
            assert broken.status_code == 200 and 'id="duties-error"' in broken.text
            assert "cannot read" in broken.text
        backdate(site, incident, days=4)  # the 72-hour clocks have run out
        with login(site.dash, "ana") as ana:
            token = csrf_of(ana.get(f"/incidents/{incident}").text)
            failed = ana.post(f"/incidents/{incident}/export", data={"csrf": token})
            assert failed.status_code == 500 and "cannot read" in failed.text
            assert ana.post("/incidents/nope/export", data={"csrf": token}).status_code == 404


def backdate(site: DutySite, incident_id: str, *, days: float) -> None:
    """Make the incident look opened ``days`` ago (the clocks start at opening)."""
    with SQLiteStore(site.db) as store:
        incident = store.get_incident(incident_id)
        assert incident is not None
        incident.opened_at -= days * 86400
        assert store.save_incident(incident)


def html_of(line: str) -> str:
    return str(escape(line))


def _between(html: str, start: str, end: str) -> str:
    at = html.index(start)
    return html[at : html.index(end, at)]


def _letter_rows(html: str) -> list[tuple[str, str]]:
    """(kind, state) of each row of the letters table."""
    table = _between(html, 'class="letters"', "</table>")
    rows = re.findall(
        r'<tr data-letter="[^"]*"[^>]*>\s*<td>([^<]*)</td><td>[^<]*</td><td class="state">([^<]*)<', table
    )
    return [(kind.strip(), state.strip()) for kind, state in rows]
