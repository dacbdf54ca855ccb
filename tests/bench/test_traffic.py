"""Simulated visitors, the wrk script built from them, and reading wrk's result line."""

from __future__ import annotations

import ipaddress
import random

import pytest

from scrapewarden.bench.apps import bench_policy
from scrapewarden.bench.traffic import PROFILE_IDS, STYLESHEET, make_visitors, people_only, pick_path
from scrapewarden.bench.wrk_load import RESULT_MARK, lua_script, parse_output
from scrapewarden.core.policy import Policy


def test_visitors_have_distinct_public_addresses_and_sessions() -> None:
    visitors = make_visitors(2000)
    assert len({v.ip for v in visitors}) == 2000
    assert len({v.session for v in visitors}) == 2000
    assert all(ipaddress.ip_address(v.ip).is_global for v in visitors)
    assert make_visitors(50) == make_visitors(50)


def test_people_only_keeps_clean_visitors_and_drops_flagged_ones() -> None:
    visitors = make_visitors(300)
    kept = people_only(visitors, bench_policy())
    assert 0 < len(kept) <= len(visitors)
    denied = Policy.model_validate(
        {"deny": {"user_agents": ["Firefox"]}, "network": {"trusted_proxies": ["127.0.0.1/32"]}}
    )
    without_firefox = people_only(visitors, denied)
    assert without_firefox
    assert all("Firefox" not in dict(v.headers())["User-Agent"] for v in without_firefox)


def test_request_mix_is_mostly_profiles() -> None:
    rng = random.Random(1)
    paths = [pick_path(rng) for _ in range(5000)]
    profiles = [p for p in paths if p.startswith("/users/")]
    assert 0.7 < len(profiles) / len(paths) < 0.9
    assert all(1 <= int(p.rsplit("/", 1)[1]) <= PROFILE_IDS for p in profiles)
    assert {"/", STYLESHEET} <= set(paths)


def test_lua_script_carries_every_visitor_with_quotes_escaped() -> None:
    visitors = make_visitors(10)
    script = lua_script(visitors, "127.0.0.1:9999")
    for visitor in visitors:
        assert f"X-Forwarded-For: {visitor.ip}" in script
    # The Chrome client hints contain double quotes; inside a Lua string they must be escaped.
    assert '\\"Chromium\\";v=\\"126\\"' in script
    assert 'local host = "127.0.0.1:9999"' in script
    with pytest.raises(ValueError):
        lua_script([], "127.0.0.1:1")


def test_parse_output_reads_the_result_line() -> None:
    line = (
        RESULT_MARK + '{"requests": 1000, "duration_us": 2000000, "non_2xx": 3, "connect_errors": 1, '
        '"read_errors": 0, "write_errors": 0, "timeouts": 2, "p99_us": 4500}'
    )
    result = parse_output("Running 2s test\n" + line + "\nRequests/sec: 500\n")
    assert result.requests == 1000
    assert result.requests_per_s == 500.0
    assert result.non_2xx == 3
    assert result.errors == 3
    assert result.p99_ms == 4.5
    with pytest.raises(RuntimeError):
        parse_output("wrk: unable to connect\n")
