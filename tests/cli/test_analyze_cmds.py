"""``scrapewarden analyze`` through click: report, block list, errors."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from scrapewarden.cli.main import main

UA = "python-requests/2.32.3"


def _log(tmp_path: Path) -> Path:
    lines = [
        f"203.0.113.{i % 3 + 1} - - [02/Mar/2026:10:{i // 60:02d}:{i % 60:02d} +0000] "
        f'"GET /users/{i} HTTP/1.1" 200 99 "-" "{UA}"'
        for i in range(900)
    ]
    lines.append("this is not a log line")
    log = tmp_path / "access.log"
    log.write_text("\n".join(lines) + "\n")
    return log


def test_analyze_writes_json_and_bans(tmp_path: Path) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text('[[protected]]\npattern = "/users/{id}"\n')
    report, bans, records = tmp_path / "r.json", tmp_path / "bans.txt", tmp_path / "records.csv"
    result = CliRunner().invoke(
        main,
        [
            "analyze",
            str(_log(tmp_path)),
            "--policy",
            str(policy),
            "--json",
            str(report),
            "--records",
            str(records),
            "--bans",
            "plain",
            "--out",
            str(bans),
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(report.read_text())
    assert (data["lines"], data["bad_lines"]) == (901, 1)
    (actor,) = data["actors"]
    assert actor["verdict"] == "scraper"
    # three addresses, one client, records only: reported once, as one campaign
    assert actor["kind"] == "campaign"
    assert sorted(actor["addresses"]) == ["203.0.113.1", "203.0.113.2", "203.0.113.3"]
    assert actor["distinct_records"] == 900
    assert sum(len(e["records"]) for e in data["records_exposed"]) == 900
    assert data["records_truncated"] is False
    csv_lines = records.read_text().splitlines()
    assert csv_lines[0] == "actor,kind,id,first_ts,last_ts,requests"
    assert len(csv_lines) == 901
    assert csv_lines[1].split(",")[1:3] == ["profile", "0"]
    assert bans.read_text().splitlines()[1:] == ["203.0.113.1/32", "203.0.113.2/31"]


def test_analyze_refuses_what_it_cannot_read(tmp_path: Path) -> None:
    junk = tmp_path / "junk.log"
    junk.write_text("hello\nworld\n")
    result = CliRunner().invoke(main, ["analyze", str(junk)])
    assert result.exit_code == 1
    assert "not a combined, common or JSON-lines access log" in result.output
    result = CliRunner().invoke(main, ["analyze", str(_log(tmp_path)), "--bans", "plain"])
    assert result.exit_code == 2
    assert "--out" in result.output


def test_analyze_opens_incidents_naming_the_campaign_and_its_records(tmp_path: Path) -> None:
    from scrapewarden.core.policy import Policy
    from scrapewarden.state.audit import entries, verify_store
    from scrapewarden.state.sqlite import SQLiteStore

    policy = tmp_path / "policy.toml"
    policy.write_text('[[protected]]\npattern = "/users/{id}"\n[incidents]\nteam = "privacy"\n')
    db = tmp_path / "state.db"
    env = {"SCRAPEWARDEN_STATE": f"sqlite:///{db}", "SCRAPEWARDEN_USER": "alice"}
    args = ["analyze", str(_log(tmp_path)), "--policy", str(policy), "--open-incidents"]
    result = CliRunner(env=env).invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "incidents: 1 opened, 0 joined" in result.output

    store = SQLiteStore(db)
    (incident,) = store.list_incidents()
    assert incident.team == "privacy" and incident.steps[0].by == "alice"
    assert incident.campaigns == [f"campaign:{UA}"]
    assert incident.records_count == 900 and len(incident.records) == 900
    assert set(incident.records) == {f"profile:{i}" for i in range(900)}
    assert (incident.first_seen, incident.last_seen) == (1772445600.0, 1772445600.0 + 899)
    # Addresses as the live trail stores them: keyed pseudonyms, with the store's key.
    assert len(incident.actors.ips) == 3 and all(ip.startswith("ip~") for ip in incident.actors.ips)
    assert "203.0.113" not in str(incident.to_dict())
    assert incident.actors.user_agents == [UA] and incident.detectors
    assert [e.action for e in entries(store)] == ["incident.open"] and verify_store(store).ok
    store.close()
    assert Policy().incidents.min_records == 20

    # The same log again: the same campaign joins the open incident instead of opening another.
    again = CliRunner(env=env).invoke(main, args)
    assert again.exit_code == 0 and "incidents: 0 opened, 1 joined" in again.output
    store = SQLiteStore(db)
    assert len(store.list_incidents()) == 1
    store.close()
