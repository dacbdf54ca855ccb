"""Issue 8's "done when", end to end on the demo site.

The protected demo site (the real ASGI middleware, the demo policy, a SQLite store) is served by
uvicorn on a loopback port. Two scrapers from two networks walk profiles with python-requests
headers until they are stopped, and a person reads a few pages; each client counts on its own
side the records it received intact (status 200 and a valid record token). When the site
stops, the Warden files what it counted. Then: each scraper has exactly one incident, naming
its address (as the store's pseudonym) and exactly the records it received, whose owners are
the people affected; the export's manifest verifies through the CLI, a changed file makes it
fail by name; and editing one audit row in SQLite makes `audit verify` fail.
"""

from __future__ import annotations

import sqlite3
import threading
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from click.testing import CliRunner

import scrapewarden.demo
from scrapewarden.cli.main import main
from scrapewarden.demo.lookup import PEOPLE_ENV, SEED_ENV
from scrapewarden.demo.people import population
from scrapewarden.demo.records import demo_secret, records_in
from scrapewarden.demo.site import create_app, demo_policy
from scrapewarden.incidents.book import IncidentBook
from scrapewarden.incidents.duties import assess_facts
from scrapewarden.incidents.facts import facts_from_incident_dict
from scrapewarden.logs.incidents_out import pseudonymizer_for
from scrapewarden.state.url import open_state

SEED = 11
PEOPLE = 3000
SECRET = demo_secret(SEED)
POLICY_FILE = Path(scrapewarden.demo.__file__).parent / "policy.toml"

BROWSER_HEADERS = {
    "user-agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36",
    "accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "accept-language": "en-GB,en;q=0.9",
    "accept-encoding": "gzip, deflate, br",
    "sec-fetch-site": "same-origin",
    "sec-fetch-mode": "navigate",
    "sec-fetch-dest": "document",
    "upgrade-insecure-requests": "1",
}
# A scraper posing as a browser: a script announcing itself is refused from its first request,
# before it received anything (so there is nothing to file).
SCRAPER_HEADERS = {**BROWSER_HEADERS, "user-agent": BROWSER_HEADERS["user-agent"].replace("131", "130")}
# The second scraper reads the JSON API with another browser's headers: with the first one's
# headers it would be refused at once as the same client (one fingerprint across addresses).
API_HEADERS = {
    **{k: v for k, v in BROWSER_HEADERS.items() if k != "upgrade-insecure-requests"},
    "user-agent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Safari/605.1.15",
    "accept": "application/json",
    "sec-fetch-mode": "cors",
    "sec-fetch-dest": "empty",
}
SCRAPER_A = "203.0.113.50"
SCRAPER_B = "198.51.100.9"
PERSON = "192.0.2.77"
MAX_REQUESTS = 400
"""Per scraper: bounded whatever the policy does."""


@contextmanager
def serve(app: Any) -> Iterator[str]:
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        log_level="warning",
        access_log=False,
        lifespan="off",
        proxy_headers=False,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    give_up = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < give_up, "uvicorn did not start"
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def _walk(base: str, ip: str, paths: list[str], headers: dict[str, str]) -> tuple[set[str], int]:
    """GET each path as ``ip``; the profile records received intact, and how many were refused.
    Stops after 30 refusals in a row (the scraper has been stopped)."""
    received: set[str] = set()
    refused = in_a_row = 0
    with httpx.Client(base_url=base, headers={**headers, "x-forwarded-for": ip}, timeout=10) as client:
        for path in paths[:MAX_REQUESTS]:
            response = client.get(path)
            person_id = int(path.rstrip("/").rsplit("/", 1)[1])
            if response.status_code == 200 and person_id in records_in(response.text, SECRET):
                received.add(f"profile:{person_id}")
                in_a_row = 0
            else:
                refused += 1
                in_a_row += 1
                if in_a_row >= 30:
                    break
    return received, refused


@pytest.fixture
def state_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'state.db'}"


def test_demo_scrapers_open_incidents_naming_their_actors_and_exactly_the_people_exposed(
    state_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SEED_ENV, str(SEED))
    monkeypatch.setenv(PEOPLE_ENV, str(PEOPLE))
    monkeypatch.setenv("SCRAPEWARDEN_USER", "dana")
    app = create_app(seed=SEED, people=PEOPLE, regime="protected", state=state_url)
    crowd = population(SEED, PEOPLE)
    with serve(app) as base:
        got_a, refused_a = _walk(
            base, SCRAPER_A, [f"/users/{i}" for i in range(1, 1 + MAX_REQUESTS)], SCRAPER_HEADERS
        )
        got_b, refused_b = _walk(
            base, SCRAPER_B, [f"/api/users/{i}" for i in range(1500, 1500 + MAX_REQUESTS)], API_HEADERS
        )
        got_person, refused_person = _walk(
            base, PERSON, ["/users/42", "/users/43", "/users/7"], BROWSER_HEADERS
        )
    app.warden.close()  # files what was still being counted, as the demo's site process does on exit

    # Both scrapers got some records through before being stopped; the person got everything.
    assert len(got_a) >= 3 and refused_a > 0, (len(got_a), refused_a)
    assert len(got_b) >= 3 and refused_b > 0, (len(got_b), refused_b)
    assert refused_person == 0 and len(got_person) == 3

    policy = demo_policy()
    with open_state(state_url) as store:
        p = pseudonymizer_for(policy, store)
        found = IncidentBook(store).list()
        by_actor = {
            ip: [i for i in found if p.ip(ip) in i.actors.ips] for ip in (SCRAPER_A, SCRAPER_B, PERSON)
        }
        assert by_actor[PERSON] == []
        incidents = {}
        for ip, received, headers in ((SCRAPER_A, got_a, SCRAPER_HEADERS), (SCRAPER_B, got_b, API_HEADERS)):
            assert len(by_actor[ip]) == 1, [i.title for i in found]
            incident = by_actor[ip][0]
            incidents[ip] = incident
            assert incident.actors.ips == [p.ip(ip)]
            assert incident.actors.networks == [p.network(ip, 24, 48)]
            assert incident.actors.user_agents == [headers["user-agent"]]
            # Exactly the records this scraper received, no more (refused ones) and no fewer.
            assert set(incident.records) == received
            assert incident.records_count == len(received)
            # ... and their owners are the people affected, every one known to the site.
            facts = facts_from_incident_dict(incident.to_dict())
            people, assessment = assess_facts(facts, policy, base_dir=POLICY_FILE.parent)
            owners = {r.split(":")[1] for r in received}
            assert {a.person.id for a in people.exposure.people} == owners
            assert people.exposure.unknown == []
            assert assessment.people == len(owners)
            names = {a.person.name for a in people.exposure.people}
            assert names == {crowd.people[int(i) - 1].name for i in owners}
        assert len(found) == 2

    run = CliRunner()
    target = incidents[SCRAPER_A]
    bundle = tmp_path / "bundle.zip"
    common = ["--state", state_url]
    result = run.invoke(
        main, ["incidents", "export", target.id, "--out", str(bundle), "--policy", str(POLICY_FILE), *common]
    )
    assert result.exit_code == 0, result.output
    with zipfile.ZipFile(bundle) as archive:
        people_csv = archive.read("affected_people.csv").decode()
        letter = archive.read("drafts/letters/cease_and_desist.txt").decode()
        names = archive.namelist()
    assert {row.split(",")[0] for row in people_csv.splitlines()[1:]} == {r.split(":")[1] for r in got_a}
    # Pseudonymised addresses are not quoted to the operator; the letter asks for the real ones.
    assert "[the 1 address used, from our" in letter and "ip~" not in letter
    assert {"manifest.json", "evidence.json", "exposed_records.csv", "audit_trail.json"} <= set(names)

    verified = run.invoke(main, ["incidents", "verify-bundle", str(bundle)])
    assert verified.exit_code == 0 and "bundle intact" in verified.output, verified.output
    tampered = tmp_path / "tampered.zip"
    with zipfile.ZipFile(bundle) as src, zipfile.ZipFile(tampered, "w") as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == "exposed_records.csv":
                data = data.replace(b"profile,1,", b"profile,99,", 1)
            dst.writestr(info, data)
    broken = run.invoke(main, ["incidents", "verify-bundle", str(tampered)])
    assert broken.exit_code == 1 and "changed: exposed_records.csv" in broken.output, broken.output

    listed = run.invoke(main, ["audit", "list", "--all", "--json", *common])
    assert '"incident.export"' in listed.output and '"dana"' in listed.output
    assert run.invoke(main, ["audit", "verify", *common]).exit_code == 0
    with sqlite3.connect(state_url.removeprefix("sqlite:///")) as db:
        db.execute("UPDATE audit SET actor = 'mallory' WHERE seq = 2")
    failed = run.invoke(main, ["audit", "verify", *common])
    assert failed.exit_code == 1 and "entry 2" in failed.output, failed.output

