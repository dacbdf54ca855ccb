"""`scrapewarden report compliance` on a real SQLite store filled by a real Warden: a scraper
blocked and banned, an incident opened and advanced, a policy change; what the report says about
each, the audit head it names, hostile text escaped in the HTML, and a tampered log shown."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from scrapewarden.cli.main import main
from scrapewarden.core.audit import AuditRecord
from scrapewarden.core.decision import Action
from scrapewarden.incidents.book import IncidentBook
from scrapewarden.state.audit import verify_store
from scrapewarden.state.sqlite import SQLiteStore
from scrapewarden.warden import Warden

T0 = 1_800_000_000.0  # 2027-01-15T08:00:00Z
PERIOD = ["--since", "2027-01-01", "--until", "2027-02-01"]
FIREFOX = [
    (b"host", b"site.example"),
    (b"user-agent", b"Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"),
    (b"accept", b"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
    (b"accept-language", b"en-GB,en;q=0.5"),
    (b"accept-encoding", b"gzip, deflate, br"),
    (b"connection", b"keep-alive"),
]
HOSTILE_UA = 'python-requests/2.31 <script>alert("ua")</script>'
HOSTILE_PATH = "/users/<img src=x onerror=alert('path')>"
POLICY = """
[identity]
account_header = "x-user"

[[protected]]
pattern = "/users/{id}"
sensitivity = 3
categories = ["name", "photo"]

[incidents]
min_records = 5
team = "trust-and-safety"
"""


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def run(db: Path, *args: str) -> Result:
    env = {"COLUMNS": "200", "SCRAPEWARDEN_STATE": f"sqlite:///{db}", "SCRAPEWARDEN_USER": "alice"}
    return CliRunner(env=env).invoke(main, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A store after a real Warden met a hostile bot, a scraper (blocked, banned, an incident)
    and a person; then the incident assigned and contained, and a policy change recorded."""
    folder = tmp_path_factory.mktemp("report")
    db, policy = folder / "state.db", folder / "policy.toml"
    policy.write_text(POLICY)
    clock = Clock()
    warden = Warden(policy, state=f"sqlite:///{db}", clock=clock)
    hostile = [(b"host", b"site.example"), (b"user-agent", HOSTILE_UA.encode())]
    for _ in range(3):
        clock.now += 1
        warden.decide_http(peer="198.51.100.20", method="GET", path=HOSTILE_PATH, query="", headers=hostile)
    actions = []
    for i in range(1, 301):
        clock.now += 0.5
        d = warden.decide_http(
            peer="203.0.113.9", method="GET", path=f"/users/{i}", query="", headers=FIREFOX
        )
        actions.append(d.effective)
    assert Action.BLOCK in actions
    for page in ("/", "/about", "/users/5"):
        clock.now += 20
        person = [*FIREFOX, (b"x-user", b"person-1")]  # signed in: not the scraper's anonymous build
        d = warden.decide_http(peer="192.0.2.44", method="GET", path=page, query="", headers=person)
        assert d.effective is Action.ALLOW
    clock.now += 120  # past the incident interval: one more request lets the watch report
    warden.decide_http(peer="192.0.2.200", method="GET", path="/", query="", headers=FIREFOX)
    warden.settle_incidents()
    warden.close()

    store = SQLiteStore(db)
    # The hostile bot opens an incident of its own (one client build judged a campaign); the
    # scraper's is the one that exposed records.
    (incident,) = [x for x in store.list_incidents() if x.records_count > 0]
    book = IncidentBook(store, clock=lambda: incident.opened_at + 900)
    book.assign(incident.id, owner="bob", by="alice")
    book.advance(incident.id, "contained", by="bob", note="address banned")
    details = {"sha256": "ab" * 32, "mode": "enforce"}
    store.append_audit(AuditRecord(T0 + 1000, "alice", "policy.write", str(policy), details))
    head = verify_store(store)
    store.close()
    return {"db": db, "policy": policy, "incident": incident, "head": head, "folder": folder}


def report(site: dict[str, Any], name: str, *extra: str) -> tuple[Result, dict[str, Any], str]:
    out_json, out_html = site["folder"] / f"{name}.json", site["folder"] / f"{name}.html"
    args = ["report", "compliance", *PERIOD, "--policy", str(site["policy"])]
    result = run(site["db"], *args, "--json", str(out_json), "--html", str(out_html), *extra)
    assert result.exit_code == 0, result.output
    return result, json.loads(out_json.read_text()), out_html.read_text()


def test_the_report_names_what_was_on_and_what_it_caught(site: dict[str, Any]) -> None:
    result, data, _ = report(site, "first")
    assert data["schema"] == "scrapewarden-compliance-1"
    assert data["period"]["since_iso"] == "2027-01-01T00:00:00Z"
    assert data["period"]["until_iso"] == "2027-02-01T00:00:00Z"
    assert data["policy"]["source"] == str(site["policy"].resolve()) and len(data["policy"]["sha256"]) == 64
    measures = {m["id"]: m for m in data["measures"]}
    assert [m["id"] for m in data["measures"]] == [f"R{n}" for n in range(1, 18)]
    assert measures["R3"]["status"] == "on" and measures["R2"]["status"] == "on"
    assert measures["R16"]["status"] == "out of scope"
    assert "team 'trust-and-safety'" in " ".join(measures["R2"]["why"])

    events = data["events"]
    assert events["decisions"]["block"] > 0 and events["decisions"]["challenge"] > 0
    assert events["detectors"]["ban"] > 0  # requests refused by the automatic ban
    assert events["detectors"]["client.bot_ua"] == 3
    assert events["detectors"]["enumeration"] > 0  # the scraper walked /users/1, 2, 3...
    assert measures["R5"]["caught"]["enumeration"] == events["detectors"]["enumeration"]
    assert events["protected_record_decisions"] > 0
    assert measures["R3"]["caught"]["breadth"] == events["detectors"].get("breadth", 0)

    assert data["bans"]["added"] >= 1 and data["bans"]["automatic"] == data["bans"]["added"]
    assert data["bans"]["by_kind"]["ip"] >= 1
    assert measures["R6"]["caught"]["bans_added"] == data["bans"]["added"]
    assert "203.0.113.9" not in json.dumps(data)  # no addresses anywhere: pseudonyms and counts

    inc = data["incidents"]
    assert inc["total"] == 2 and inc["by_stage"]["contained"] == 1 and inc["by_stage"]["open"] == 1
    assert inc["owners"] == {"(unassigned)": 1, "bob": 1} and inc["teams"] == {"trust-and-safety": 2}
    assert inc["time_to_contain"] == {"count": 1, "median_seconds": 900.0, "max_seconds": 900.0}
    assert site["incident"].id in [x["id"] for x in inc["list"]]
    assert inc["records_exposed"] == site["incident"].records_count > 0

    audit = data["audit"]
    head = site["head"]
    assert audit["ok"] and (audit["head_seq"], audit["head"]) == (head.head_seq, head.head)
    assert audit["by_action"]["incident.open"] == 2 and audit["by_action"]["incident.advance"] == 1
    assert [c["action"] for c in audit["policy_changes"]] == ["policy.write"]
    assert measures["R12"]["status"] == "on"

    assert "R3   on" in result.output and "not legal advice" in result.output
    assert f"head {head.head_seq} {head.head}" in result.output


def test_the_html_escapes_what_clients_sent(site: dict[str, Any]) -> None:
    _, data, page = report(site, "escape")
    samples = data["events"]["samples"]["client.bot_ua"]
    assert {s["user_agent"] for s in samples} == {HOSTILE_UA}
    assert {s["path"] for s in samples} == {HOSTILE_PATH}
    assert "<script" not in page.lower() and "<img" not in page.lower()
    assert "&lt;script&gt;alert(&#34;ua&#34;)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=alert(&#39;path&#39;)&gt;" in page
    # Self-contained, readable without scripts, and says what it is.
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)
    assert "not legal advice" in page and "R17" in page and site["head"].head in page


def test_a_tampered_audit_log_shows_in_the_report(site: dict[str, Any], tmp_path: Path) -> None:
    copy = tmp_path / "tampered.db"
    copy.write_bytes(site["db"].read_bytes())
    con = sqlite3.connect(copy)
    with con:
        con.execute("UPDATE audit SET actor = 'mallory' WHERE seq = 1")
    con.close()
    result = run(copy, "report", "compliance", *PERIOD, "--json", str(tmp_path / "t.json"))
    assert result.exit_code == 0
    data = json.loads((tmp_path / "t.json").read_text())
    assert not data["audit"]["ok"] and data["audit"]["broken_seq"] == 1
    measures = {m["id"]: m for m in data["measures"]}
    assert measures["R11"]["status"] == "off"
    assert "BROKEN at entry 1" in result.output


def test_bad_periods_are_refused_clearly(site: dict[str, Any]) -> None:
    result = run(site["db"], "report", "compliance", "--since", "last tuesday")
    assert result.exit_code == 2 and "neither a duration" in result.output
    result = run(site["db"], "report", "compliance", "--since", "2027-02-01", "--until", "2027-01-01")
    assert result.exit_code == 2 and "before --until" in result.output


# -- operator allows (R15) ---------------------------------------------------------------------------

PARTNER = "203.0.113.77"


def test_operator_allows_are_in_the_compliance_report(tmp_path: Path) -> None:
    db, policy = tmp_path / "state.db", tmp_path / "policy.toml"
    policy.write_text(POLICY)
    clock = Clock()
    warden = Warden(policy, state=f"sqlite:///{db}", clock=clock)
    warden.allow("ip", PARTNER, ttl=None, reason="research access <contract 12>", by="alice")
    effective = []
    for i in range(1, 301):  # what would be scraping: the allow lets it through, still recorded
        clock.now += 0.5
        decision = warden.decide_http(
            peer=PARTNER, method="GET", path=f"/users/{i}", query="", headers=FIREFOX
        )
        effective.append(decision.effective)
    assert set(effective) == {Action.ALLOW}
    clock.now += 60
    assert warden.lift_allow("ip", PARTNER, by="bob")
    warden.ban("ip", "198.51.100.3", ttl=600, reason="manual", by="bob")
    warden.close()

    out_json, out_html = tmp_path / "r.json", tmp_path / "r.html"
    args = ["report", "compliance", *PERIOD, "--policy", str(policy), "--json", str(out_json)]
    result = run(db, *args, "--html", str(out_html))
    assert result.exit_code == 0, result.output
    report = json.loads(out_json.read_text())
    bans = report["bans"]
    assert (bans["added"], bans["allows_added"], bans["allows_removed"]) == (1, 1, 1)
    assert bans["allows_by_kind"] == {"ip": 1}
    allowed = report["events"]["operator_allowed"]
    assert allowed["total"] > 0 and allowed["by_kind"] == {"ip": allowed["total"]}
    assert set(allowed["overriding"]) <= {"block", "challenge", "throttle"}
    assert report["events"]["decisions"]["allow"] == allowed["total"]
    r15 = {m["id"]: m for m in report["measures"]}["R15"]
    assert r15["status"] == "partly"  # no partners configured, but the allow was monitored
    assert r15["caught"]["operator_allowed"] == allowed["total"] and r15["caught"]["allows_added"] == 1
    html = out_html.read_text()
    assert "1 operator allows made, 1 lifted" in html.replace("\n", " ")
    assert f"{allowed['total']} request(s) an allow let through" in html.replace("\n", " ")
    # The allowed address is personal data: in the audit section only, never in the figures.
    assert PARTNER not in json.dumps({k: v for k, v in report.items() if k != "audit"})
