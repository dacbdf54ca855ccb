"""Access logs as requests for a policy replay: the window, malformed lines, several files, gzip."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from scrapewarden.logs.replay_source import read_requests

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
APACHE = SHARED / "elastic-apache-logs" / "apache_logs"


def _line(ip: str, minute: int, path: str = "/", ua: str = "Mozilla/5.0") -> str:
    return f'{ip} - - [20/May/2015:10:{minute:02d}:00 +0000] "GET {path} HTTP/1.1" 200 10 "-" "{ua}"\n'


def test_the_window_ends_at_the_newest_line_and_bad_lines_are_counted(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_text(
        _line("203.0.113.1", 0)
        + "this is not a log line\n"
        + _line("203.0.113.2", 50, "/people/1?x=1")
        + '{"broken json\n'
        + "\n"
        + _line("203.0.113.3", 59),
        encoding="utf-8",
    )
    read = read_requests([log], hours=0.25)  # the last 15 minutes before 10:59
    assert [f.ip for f in read.requests] == ["203.0.113.2", "203.0.113.3"]
    assert (read.lines, read.bad_lines) == (5, 2)
    assert read.bad_examples == ["this is not a log line", '{"broken json']
    assert read.requests[0].path == "/people/1" and read.requests[0].query == "x=1"
    assert read.first_ts is not None and read.last_ts is not None and read.last_ts - read.first_ts == 540
    everything = read_requests([log], hours=24)
    assert len(everything.requests) == 3 and not everything.truncated


def test_several_files_gzip_and_an_unreadable_one_merge_in_time_order(tmp_path: Path) -> None:
    later = tmp_path / "access.log"
    later.write_text(_line("203.0.113.9", 30), encoding="utf-8")
    earlier = tmp_path / "access.log.1.gz"
    with gzip.open(earlier, "wt", encoding="utf-8") as out:
        out.write(_line("203.0.113.8", 10) + _line("203.0.113.7", 20))
    read = read_requests([later, earlier, tmp_path / "missing.log"], hours=1)
    assert [f.ip for f in read.requests] == ["203.0.113.8", "203.0.113.7", "203.0.113.9"]
    assert len(read.unreadable) == 1 and "missing.log" in read.unreadable[0]


def test_at_most_max_requests_the_newest_kept(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_text("".join(_line(f"203.0.113.{m}", m) for m in range(50)), encoding="utf-8")
    read = read_requests([log], hours=24, max_requests=10)
    assert read.truncated and len(read.requests) == 10
    assert read.requests[0].ip == "203.0.113.40"


@pytest.mark.skipif(not APACHE.is_file(), reason="shared data not present")
def test_a_real_apache_log() -> None:
    read = read_requests([APACHE], hours=24)
    # 10 000 lines over four days (17-20 May 2015); the last day's requests are kept.
    assert read.lines == 10_000 and read.bad_lines == 0
    assert 1000 < len(read.requests) < 10_000
    assert read.last_ts is not None and read.first_ts is not None
    assert read.last_ts - read.first_ts <= 24 * 3600
    assert any("Googlebot" in f.user_agent for f in read.requests)
