"""The log reader on crafted logs (every format, malformed lines) and on the real logs in ../shared/data."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from scrapewarden.logs.fallback import clf_time, parse_line
from scrapewarden.logs.formats import detect, json_mapping
from scrapewarden.logs.reader import connect, load

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
UA = "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"


def _rows(con):
    return con.execute(
        "SELECT ip, ts, method, path, query, status, bytes, referer, ua, account FROM requests "
        "ORDER BY ts, ip"
    ).fetchall()


def _combined(i: int, path: str = "/users/1", tz: str = "+0000") -> str:
    return (
        f'10.0.0.{i} - - [17/May/2015:10:05:{i:02d} {tz}] "GET {path} HTTP/1.1" 200 {100 + i} '
        f'"https://example.com/" "{UA}"'
    )


def test_combined_plain_and_gz_in_one_run(tmp_path: Path) -> None:
    plain = tmp_path / "a.log"
    plain.write_text("\n".join(_combined(i) for i in range(1, 4)) + "\n")
    packed = tmp_path / "b.log.gz"
    packed.write_bytes(
        gzip.compress(("\n".join(_combined(i, "/x?q=1") for i in range(4, 6)) + "\n").encode())
    )
    con = connect()
    stats = load(con, [plain, packed])
    assert (stats.lines, stats.bad_lines) == (5, 0)
    assert set(stats.formats.values()) == {"combined"}
    rows = _rows(con)
    assert rows[0] == (
        "10.0.0.1",
        1431857101.0,
        "GET",
        "/users/1",
        "",
        200,
        101,
        "https://example.com/",
        UA,
        None,
    )
    assert rows[-1][3:5] == ("/x", "q=1")


def test_time_zone_offset_is_applied(tmp_path: Path) -> None:
    log = tmp_path / "tz.log"
    log.write_text(_combined(1, tz="-0800") + "\n" + _combined(2, tz="+0130") + "\n")
    con = connect()
    load(con, [log])
    times = dict(con.execute("SELECT ip, ts FROM requests").fetchall())
    assert times["10.0.0.1"] == 1431857101.0 + 8 * 3600
    assert times["10.0.0.2"] == 1431857102.0 - 5400
    assert clf_time("17/May/2015:10:05:01 -0800") == times["10.0.0.1"]


def test_common_format(tmp_path: Path) -> None:
    log = tmp_path / "common.log"
    log.write_text('1.2.3.4 - alice [01/Jan/2024:00:00:00 +0000] "POST /login HTTP/1.1" 302 -\n' * 3)
    con = connect()
    stats = load(con, [log])
    assert stats.formats[str(log)] == "common"
    assert (stats.lines, stats.bad_lines) == (3, 0)
    assert _rows(con)[0] == ("1.2.3.4", 1704067200.0, "POST", "/login", "", 302, None, "", "", "alice")


def test_malformed_lines_are_counted_recovered_or_skipped(tmp_path: Path) -> None:
    lines = [
        _combined(1),
        "garbage line here",
        # unterminated quote: swallows the next line, which is counted bad
        '10.0.0.2 - - [17/May/2015:10:05:02 +0000] "GET /b HTTP/1.1" 200 12 "-" "unterminated',
        _combined(3),
        # a stray quote in the request shifts the columns: not trusted, counted bad
        '10.0.0.4 - - [17/May/2015:10:05:04 +0000] "GET /e"x HTTP/1.1" 200 - "-" "ok"',
        # too few columns for the fast path; the fallback reads it as a common line
        '10.0.0.5 - - [17/May/2015:10:05:05 +0000] "GET /f HTTP/1.1" 200 5',
        _combined(6).replace(UA, 'Mozilla \\"quoted\\" agent'),
    ]
    log = tmp_path / "bad.log"
    log.write_text("\n".join(lines) + "\n")
    con = connect()
    stats = load(con, [log])
    assert stats.lines == 7
    assert stats.bad_lines == 3
    assert stats.recovered == 1
    assert "garbage line here" in stats.bad_examples
    ips = {r[0]: r for r in _rows(con)}
    assert set(ips) == {"10.0.0.1", "10.0.0.2", "10.0.0.5", "10.0.0.6"}
    assert ips["10.0.0.2"][8] == "unterminated"
    assert ips["10.0.0.6"][8] == 'Mozilla "quoted" agent'


def test_nginx_json_lines(tmp_path: Path) -> None:
    records = [
        {
            "remote_addr": "1.2.3.4",
            "time_iso8601": "2024-01-02T03:04:05+01:00",
            "request": "GET /a?x=1 HTTP/1.1",
            "status": "200",
            "body_bytes_sent": "10",
            "http_referer": "",
            "http_user_agent": 'x"y',
            "remote_user": "",
        },
        {
            "remote_addr": "1.2.3.5",
            "time_iso8601": "2024-01-02T03:04:06+00:00",
            "request": "GET /b HTTP/1.1",
            "status": 404,
            "http_user_agent": "curl/8",
        },
    ]
    log = tmp_path / "nginx.json"
    log.write_text("\n".join(json.dumps(r) for r in records) + '\nnot json\n{"remote_addr": "9.9.9.9"}\n')
    con = connect()
    stats = load(con, [log])
    assert stats.formats[str(log)] == "json"
    assert (stats.lines, stats.bad_lines) == (4, 2)
    rows = _rows(con)
    assert rows[0] == ("1.2.3.4", 1704161045.0, "GET", "/a", "x=1", 200, 10, "", 'x"y', None)
    assert rows[1][5] == 404


def test_cloud_load_balancer_json(tmp_path: Path) -> None:
    gcp = {
        "timestamp": "2024-01-02T03:04:05.5Z",
        "httpRequest": {
            "requestMethod": "GET",
            "requestUrl": "https://example.com/users/7?tab=1",
            "status": 200,
            "remoteIp": "2001:db8::1",
            "userAgent": UA,
            "referer": "https://example.com/",
        },
    }
    alb = {
        "time": "2024-01-02T03:04:05.000000Z",
        "client_ip": "198.51.100.7:41234",
        "method": "GET",
        "request_url": "http://example.com:80/users/8",
        "elb_status_code": "200",
        "user_agent": "curl/8",
    }
    for name, obj, ip, path in (
        ("gcp.json", gcp, "2001:db8::1", "/users/7"),
        ("alb.json", alb, "198.51.100.7", "/users/8"),
    ):
        log = tmp_path / name
        log.write_text(json.dumps(obj) + "\n")
        con = connect()
        stats = load(con, [log])
        assert stats.bad_lines == 0
        row = _rows(con)[0]
        assert (row[0], row[2], row[3], row[5]) == (ip, "GET", path, 200)
        assert row[1] == pytest.approx(1704164645.0, abs=1)


def test_detection_and_errors(tmp_path: Path) -> None:
    assert detect([_combined(1)]) == "combined"
    with pytest.raises(ValueError, match="not a combined"):
        detect(["hello", "world"])
    with pytest.raises(ValueError, match="without ip"):
        json_mapping(['{"a": 1}'])
    with pytest.raises(FileNotFoundError):
        load(connect(), [tmp_path / "missing.log"])


def test_fallback_parser_agrees_with_fast_path(tmp_path: Path) -> None:
    line = _combined(7, "/users/42?x=1")
    row = parse_line(line)
    assert row is not None
    log = tmp_path / "one.log"
    log.write_text(line + "\n")
    con = connect()
    load(con, [log])
    assert tuple(row)[:10] == _rows(con)[0]
    assert row.fp is None


@pytest.mark.skipif(not SHARED.is_dir(), reason="shared data not present")
def test_real_logs_read_with_no_loss_but_one_broken_line() -> None:
    files = [
        SHARED / "elastic-apache-logs" / "apache_logs",
        *sorted((SHARED / "secrepo-access-logs").glob("access.log*")),
    ]
    con = connect()
    stats = load(con, files)
    # 22,077 lines; one elastic line ends inside an unterminated quote and swallows its successor.
    assert stats.lines == 22077
    assert stats.bad_lines == 1
    n, bad_ts, no_ip = con.execute(
        "SELECT count(*), count(*) FILTER (WHERE ts < 1.4e9 OR ts > 1.7e9),"
        " count(*) FILTER (WHERE ip = '') FROM requests"
    ).fetchone()
    assert (n, bad_ts, no_ip) == (22076, 0, 0)


def test_json_fallback_parser_agrees_with_fast_path(tmp_path: Path) -> None:
    from scrapewarden.logs.fallback import parse_json_line

    records = [
        {"remote_addr": "1.2.3.4", "time_iso8601": "2024-01-02T03:04:05+01:00",
         "request": "GET /a?x=1 HTTP/1.1", "status": "200", "body_bytes_sent": "10",
         "http_user_agent": 'x"y', "remote_user": "bob"},
        {"timestamp": "2024-01-02T03:04:05.5Z", "httpRequest": {"requestMethod": "POST", "status": 201,
         "requestUrl": "https://example.com/users/7?tab=1", "remoteIp": "2001:db8::1", "userAgent": UA}},
        {"time": "2024-01-02T03:04:05Z", "client_ip": "198.51.100.7:41234", "request_url": "http://h:80/u/8",
         "elb_status_code": "404", "user_agent": "curl/8"},
    ]  # fmt: skip
    for i, record in enumerate(records):
        log = tmp_path / f"{i}.json"
        log.write_text(json.dumps(record) + "\n")
        con = connect()
        load(con, [log])
        fast = _rows(con)[0]
        slow = parse_json_line(json.dumps(record), json_mapping([json.dumps(record)]))
        assert slow is not None
        assert tuple(slow)[:10] == fast, i
    assert parse_json_line("not json", json_mapping([json.dumps(records[0])])) is None


def test_odd_files_empty_gzip_without_suffix_crlf_and_mixed_json(tmp_path: Path) -> None:
    empty = tmp_path / "access.log"
    empty.write_text("")  # freshly rotated
    packed = tmp_path / "access.log.1"  # compressed, no .gz suffix
    packed.write_bytes(gzip.compress((_combined(1) + "\n").encode()))
    crlf = tmp_path / "windows.log"
    crlf.write_bytes((_combined(2) + "\r\n" + _combined(3) + "\r\n").encode())
    nginx = tmp_path / "nginx.json"
    nginx.write_text(
        json.dumps({"remote_addr": "1.1.1.1", "msec": "1704067200.5", "request": "GET /n HTTP/1.1"}) + "\n"
    )
    gcp = tmp_path / "gcp.json"
    gcp.write_text(
        json.dumps(
            {"timestamp": "2024-01-01T00:00:00Z", "httpRequest": {"remoteIp": "2.2.2.2", "requestUrl": "/g"}}
        )
        + "\n"
    )
    con = connect()
    stats = load(con, [empty, packed, crlf, nginx, gcp])
    assert stats.formats[str(empty)] == "empty"
    assert (stats.lines, stats.bad_lines) == (5, 0)
    paths = dict(con.execute("SELECT ip, path FROM requests").fetchall())
    assert paths == {"10.0.0.1": "/users/1", "10.0.0.2": "/users/1", "10.0.0.3": "/users/1", "1.1.1.1": "/n",
                     "2.2.2.2": "/g"}  # fmt: skip
    uas = {r[0] for r in con.execute("SELECT ua FROM requests WHERE ip LIKE '10.%'").fetchall()}
    assert uas == {UA}  # no stray carriage return


def test_only_empty_files_give_an_empty_table(tmp_path: Path) -> None:
    empty = tmp_path / "a.log"
    empty.write_text("\n")
    con = connect()
    stats = load(con, [empty])
    assert (stats.lines, stats.bad_lines) == (0, 0)
    assert con.execute("SELECT count(*) FROM requests").fetchone() == (0,)


def test_fingerprint_fields_of_json_logs(tmp_path: Path) -> None:
    from scrapewarden.logs.fallback import parse_json_line

    record = {"remote_addr": "1.2.3.4", "msec": "1704067200", "request": "GET / HTTP/1.1",
              "http_user_agent": UA, "http_accept_language": "de-DE,de;q=0.9",
              "http_sec_ch_ua": '"Chromium";v="130"'}  # fmt: skip
    log = tmp_path / "fp.json"
    log.write_text(json.dumps(record) + "\n")
    con = connect()
    load(con, [log])
    (fast,) = con.execute("SELECT fp FROM requests").fetchone()
    assert fast == 'de-DE,de;q=0.9 | "Chromium";v="130"'
    slow = parse_json_line(json.dumps(record), json_mapping([json.dumps(record)]))
    assert slow is not None and slow.fp == fast
