"""`scrapewarden policy replay --draft new.toml LOG...` on a real access log and a broken one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from scrapewarden.cli.main import main

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
APACHE = SHARED / "elastic-apache-logs" / "apache_logs"
STRICT = "[limits.per_ip]\nrequests_per_minute = 5\nprofiles_per_hour = 400\nprofiles_per_day = 1500\n"
UA = "\x1b[2J<script>x</script>"
"""A hostile user agent: an escape sequence that would clear the operator's terminal."""


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["policy", "replay", *args], env={"SCRAPEWARDEN_POLICY": ""})
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.skipif(not APACHE.is_file(), reason="shared data not present")
def test_a_stricter_draft_over_a_real_log(tmp_path: Path) -> None:
    draft = tmp_path / "draft.toml"
    draft.write_text(STRICT, encoding="utf-8")
    code, out, _ = _run("--draft", str(draft), "--hours", "24", "--json", str(APACHE))
    assert code == 0
    report = json.loads(out)
    assert report["lines"] == 10_000 and report["bad_lines"] == 0
    assert report["requests"] == sum(report["current"].values()) == sum(report["draft"].values())
    # The log is all traffic: most of it was allowed, and the stricter draft refuses some of that.
    assert report["current"]["allow"] > report["requests"] * 0.9
    assert report["stricter"] > 0 and report["draft"]["allow"] < report["current"]["allow"]
    code, text, _ = _run("--draft", str(draft), "--hours", "24", "--show", "2", str(APACHE))
    assert code == 0 and "requests replayed" in text and "more strictly" in text


def test_malformed_lines_are_counted_and_hostile_text_escaped(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_text(
        "garbage line\n"
        + "".join(
            f'203.0.113.5 - - [20/May/2015:10:00:{s:02d} +0000] "GET /p/{s} HTTP/1.1" 200 1 "-" "{UA}"\n'
            for s in range(12)
        ),
        encoding="utf-8",
    )
    draft = tmp_path / "draft.toml"
    draft.write_text(STRICT, encoding="utf-8")
    code, out, err = _run("--draft", str(draft), str(log))
    assert code == 0
    assert "13 lines read, 1 malformed" in out and "malformed: garbage line" in err
    assert "more strictly" in out and "<script>x</script>" in out  # the user agent is shown...
    assert "\x1b" not in out and "\\x1b[2J" in out  # ...with its escape sequence made visible


def test_a_draft_that_does_not_load_exits_2(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_text("", encoding="utf-8")
    draft = tmp_path / "draft.toml"
    draft.write_text('[limits.per_ip]\nprofiles_per_hour = "three"\n', encoding="utf-8")
    code, _, err = _run("--draft", str(draft), str(log))
    assert code == 2 and "limits.per_ip.profiles_per_hour" in err
