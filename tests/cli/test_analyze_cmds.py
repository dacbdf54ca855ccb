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
