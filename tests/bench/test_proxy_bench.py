"""``scrapewarden bench proxy``: the nginx configurations it generates, and one short real run.

The configuration tests start the real nginx from the Debian package (skipped when it is not
installed) on free loopback ports, in tmp_path. No timing thresholds anywhere: only what each
target serves and the report's shape.
"""

from __future__ import annotations

import bisect
import http.client
import ipaddress
import itertools
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from scrapewarden.bench.apps import bench_policy
from scrapewarden.bench.load_result import LoadResult
from scrapewarden.bench.nginx_conf import (
    BLOCKED_NETWORKS,
    BLOCKED_PREFIXES,
    BODY_BYTES,
    LIMIT_BURST,
    LIMIT_RATE_PER_S,
    block_list,
    geo_entries,
    json_body,
    render,
)
from scrapewarden.bench.nginx_server import nginx_command, nginx_path, serve_nginx
from scrapewarden.bench.proxy_bench import POLICY_TOML, TARGETS, compare, missing_command
from scrapewarden.bench.rounds import round_robin, summarize
from scrapewarden.bench.servers import HOST
from scrapewarden.bench.traffic import CLIENTS, make_visitors
from scrapewarden.bench.wrk_load import wrk_path
from scrapewarden.policy_file import load_policy

needs_nginx = pytest.mark.skipif(nginx_path() is None, reason="nginx is not installed")
MEASURED_KEYS = {
    "requests_per_s",
    "p50_ms",
    "p99_ms",
    "non_2xx",
    "errors",
    "ratio_to_nginx_limit_req",
    "added_p99_ms",
}


@pytest.fixture(scope="module")
def visitor_ips() -> list[str]:
    # Every address the benchmark may draw its visitors from (it keeps those the policy passes).
    return [visitor.ip for visitor in make_visitors(CLIENTS + CLIENTS // 4)]


@pytest.fixture(scope="module")
def blocked(visitor_ips: list[str]) -> list[ipaddress.IPv4Network]:
    return block_list(visitor_ips)


def get(port: int, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection(HOST, port, timeout=5)
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def answers(port: int) -> bool:
    try:
        get(port, "/")
        return True
    except OSError:
        return False


# --- the block list --------------------------------------------------------------------------


def test_block_list_has_ten_thousand_valid_non_overlapping_networks(
    blocked: list[ipaddress.IPv4Network],
) -> None:
    assert len(blocked) == BLOCKED_NETWORKS == 10_000
    for network in blocked:
        # Valid CIDR: the text nginx gets parses back, strictly, to the same network.
        assert ipaddress.IPv4Network(str(network), strict=True) == network
        assert network.prefixlen in BLOCKED_PREFIXES
    ordered = sorted(blocked)
    for before, after in itertools.pairwise(ordered):
        assert before.broadcast_address < after.network_address, (before, after)


def test_block_list_covers_no_visitor(blocked: list[ipaddress.IPv4Network], visitor_ips: list[str]) -> None:
    # Brute force on purpose: independent of the bisect logic under test.
    ranges = sorted((int(n.network_address), int(n.broadcast_address)) for n in blocked)
    starts = [start for start, _ in ranges]
    for ip in visitor_ips:
        value = int(ipaddress.IPv4Address(ip))
        slot = bisect.bisect_right(starts, value) - 1
        assert slot < 0 or ranges[slot][1] < value, ip


def test_block_list_is_the_same_for_the_same_seed_and_avoids_what_it_is_told(visitor_ips: list[str]) -> None:
    first = block_list(visitor_ips[:100], count=500)
    assert first == block_list(visitor_ips[:100], count=500)
    # Avoid the first network's own address: the next draw can no longer contain it.
    inside = str(first[0].network_address + 1)
    assert all(
        ipaddress.IPv4Address(inside) not in n for n in block_list([*visitor_ips[:100], inside], count=500)
    )


def test_geo_entries_are_one_cidr_per_line(blocked: list[ipaddress.IPv4Network]) -> None:
    lines = geo_entries(blocked).splitlines()
    assert len(lines) == len(blocked)
    assert all(re.fullmatch(r"\d{1,3}(\.\d{1,3}){3}/\d{1,2} 1;", line) for line in lines)


# --- the body and the templates --------------------------------------------------------------


def test_json_body_is_one_kilobyte_of_json_safe_in_nginx_quotes() -> None:
    body = json_body()
    assert len(body.encode("ascii")) == BODY_BYTES == 1024
    assert json.loads(body)["id"] == 4242
    assert not {"'", "\\", "$"} & set(body)


def test_every_template_renders_completely() -> None:
    values = {
        "DIR": "/tmp/x",
        "PORT": 1,
        "UPSTREAM_PORT": 2,
        "AUTHZ_PORT": 3,
        "BODY": "{}",
        "RATE": LIMIT_RATE_PER_S,
        "BURST": LIMIT_BURST,
        "BLOCKED_COUNT": 10,
    }
    for site in ("upstream.conf", "limit_req.conf", "auth_request.conf"):
        text = render(site, values)
        assert not re.search(r"@[A-Z_]+@", text), site
        assert "listen 127.0.0.1:1;" in text
        assert "worker_processes 1;" in text and "access_log off;" in text
    assert "include /tmp/x/blocklist.conf;" in render("limit_req.conf", values)
    with pytest.raises(ValueError, match="@UPSTREAM_PORT@"):
        render("limit_req.conf", {"DIR": "/tmp/x", "PORT": 1, "RATE": 1, "BURST": 1, "BLOCKED_COUNT": 1})


def test_the_policy_file_is_the_bench_policy(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(POLICY_TOML, encoding="utf-8")
    assert load_policy(path, env={}) == bench_policy()


NGINX_SNIPPET = Path(__file__).parents[2] / "docs" / "deploy" / "nginx" / "scrapewarden.conf"


def block(text: str, header: str) -> list[str]:
    """The directives inside the first ``header {`` block (no nested blocks), comments dropped."""
    lines = [line.split("#", 1)[0].strip() for line in text.splitlines()]
    start = lines.index(header + " {") + 1
    end = lines.index("}", start)
    return [line for line in lines[start:end] if line]


@pytest.mark.skipif(not NGINX_SNIPPET.exists(), reason="no documented nginx snippet in this tree")
def test_auth_request_config_asks_authz_as_the_documented_snippet_does() -> None:
    snippet = NGINX_SNIPPET.read_text(encoding="utf-8")
    ours = render("auth_request.conf", {"DIR": "/d", "PORT": 8080, "UPSTREAM_PORT": 8000, "AUTHZ_PORT": 9100})
    for header in ("location = /.scrapewarden/auth", "location @scrapewarden", "upstream scrapewarden_authz"):
        assert block(ours, header) == block(snippet, header), header
    # In the site location: the same auth_request lines and headers; only the way to the site
    # differs (our keep-alive pool, as nginx_limit_req has).
    site = block(snippet, "location /")
    wanted = [line for line in site if not line.startswith("proxy_pass ")]
    assert set(wanted) <= set(block(ours, "location /"))


@needs_nginx
def test_auth_request_config_passes_nginx_check(tmp_path: Path) -> None:
    values = {"DIR": tmp_path, "PORT": 1, "UPSTREAM_PORT": 2, "AUTHZ_PORT": 3}
    (tmp_path / "tmp").mkdir()
    (tmp_path / "nginx.conf").write_text(render("auth_request.conf", values), encoding="utf-8")
    binary = nginx_path()
    assert binary is not None
    command = nginx_command(binary, tmp_path)
    result = subprocess.run([*command[:-2], "-t", *command[-2:]], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr


# --- real nginx --------------------------------------------------------------------------------


@needs_nginx
def test_upstream_serves_the_body_for_any_path_and_stops(tmp_path: Path) -> None:
    with serve_nginx("upstream.conf", tmp_path / "upstream", {"BODY": json_body()}) as port:
        for path in ("/users/17", "/", "/static/app.css"):
            status, body = get(port, path)
            assert (status, body.decode()) == (200, json_body())
    assert not answers(port)


@needs_nginx
def test_nginx_limit_req_passes_visitors_and_refuses_blocked_networks(
    tmp_path: Path, blocked: list[ipaddress.IPv4Network], visitor_ips: list[str]
) -> None:
    values = {
        "UPSTREAM_PORT": 0,
        "RATE": LIMIT_RATE_PER_S,
        "BURST": LIMIT_BURST,
        "BLOCKED_COUNT": len(blocked),
    }
    with serve_nginx("upstream.conf", tmp_path / "upstream", {"BODY": json_body()}) as upstream:
        values["UPSTREAM_PORT"] = upstream
        files = {"blocklist.conf": geo_entries(blocked)}
        with serve_nginx("limit_req.conf", tmp_path / "front", values, files) as port:
            for ip in visitor_ips[:20]:
                status, body = get(port, "/users/3", {"X-Forwarded-For": ip})
                assert (status, len(body)) == (200, BODY_BYTES), ip
            # The client address comes from X-Forwarded-For (real_ip), and the geo list holds.
            for network in (blocked[0], blocked[-1]):
                status, _ = get(port, "/users/3", {"X-Forwarded-For": str(network.network_address + 1)})
                assert status == 403, network


def test_nginx_directory_must_be_fresh(tmp_path: Path) -> None:
    (tmp_path / "used").mkdir()
    if nginx_path() is None:
        pytest.skip("nginx is not installed")
    with pytest.raises(FileExistsError), serve_nginx("upstream.conf", tmp_path / "used", {"BODY": "{}"}):
        pass


# --- the report --------------------------------------------------------------------------------


def result(rate: float, p50: float, p99: float) -> LoadResult:
    return LoadResult(requests=int(rate), seconds=1.0, non_2xx=0, errors=0, p99_ms=p99, p50_ms=p50)


def test_compare_adds_ratios_and_added_p99_and_leaves_skipped_targets_alone() -> None:
    targets = {
        "upstream": summarize([result(60000, 0.3, 1.0)]),
        "nginx_limit_req": summarize([result(30000, 0.9, 2.0)]),
        "scrapewarden_proxy": summarize([result(15000, 1.5, 3.5)]),
        "nginx_auth_request": {"skipped": "not here"},
    }
    compare(targets)
    assert targets["upstream"]["ratio_to_nginx_limit_req"] == 2.0
    assert targets["nginx_limit_req"]["ratio_to_nginx_limit_req"] == 1.0
    assert targets["scrapewarden_proxy"]["ratio_to_nginx_limit_req"] == 0.5
    assert targets["scrapewarden_proxy"]["added_p99_ms"] == 2.5
    assert targets["upstream"]["added_p99_ms"] == 0.0
    assert targets["nginx_auth_request"] == {"skipped": "not here"}


def test_round_robin_gives_every_target_a_turn_and_a_seed() -> None:
    order = list(round_robin(list(TARGETS), 3))
    assert len(order) == 12
    for number in range(3):
        names = [name for round_number, _, name in order if round_number == number]
        assert sorted(names) == sorted(TARGETS)
        assert names[0] == TARGETS[number]
    assert len({seed for _, seed, _ in order}) == 12


def test_missing_command_names_what_is_missing() -> None:
    assert missing_command("bench") is None
    reason = missing_command("no-such-door")
    assert reason is not None and "no-such-door" in reason


def bench_processes() -> dict[str, str]:
    """Process id to command line of the processes using a benchmark run folder."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
            except OSError:
                continue
            if "scrapewarden-bench-proxy-" in cmdline:
                found[entry.name] = cmdline
    return found


@needs_nginx
@pytest.mark.skipif(wrk_path() is None, reason="wrk is not installed")
def test_bench_proxy_json_for_real() -> None:
    before = bench_processes()
    script = Path(sys.executable).with_name("scrapewarden")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "scrapewarden.cli.main"]
    env = {**os.environ, "COLUMNS": "200"}
    run = subprocess.run(
        [*command, "bench", "proxy", "--json", "--duration", "1"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert run.returncode in (0, 1), run.stderr
    report = json.loads(run.stdout)
    assert run.returncode == (0 if report["ok"] else 1)
    assert (report["load_tool"], report["duration_s"], report["connections"], report["rounds"]) == (
        "wrk",
        1,
        32,
        1,
    )
    assert list(report["targets"]) == list(TARGETS)
    for name, target in report["targets"].items():
        if "skipped" in target:
            assert name not in ("upstream", "nginx_limit_req")
            assert isinstance(target["skipped"], str) and target["skipped"]
            continue
        assert set(target) >= MEASURED_KEYS, name
        assert target["p99_ms"] >= target["p50_ms"] > 0, name
    for name in ("upstream", "nginx_limit_req"):
        target = report["targets"][name]
        assert target["requests"] > 0 and target["requests_per_s"] > 0, name
        assert target["non_2xx"] == 0 and target["errors"] == 0, name
    assert report["targets"]["nginx_limit_req"]["ratio_to_nginx_limit_req"] == 1.0
    assert report["targets"]["upstream"]["added_p99_ms"] == 0.0
    assert "round 1/1: nginx_limit_req" in run.stderr
    # Every server the run started is gone.
    assert set(bench_processes()) <= set(before)


def test_wrk_result_line_carries_the_median() -> None:
    from scrapewarden.bench.wrk_load import RESULT_MARK, lua_script, parse_output

    line = (
        RESULT_MARK + '{"requests": 10, "duration_us": 1000000, "non_2xx": 0, "connect_errors": 0, '
        '"read_errors": 0, "write_errors": 0, "timeouts": 0, "p50_us": 350, "p99_us": 1200}'
    )
    assert (parse_output(line).p50_ms, parse_output(line).p99_ms) == (0.35, 1.2)
    assert "latency:percentile(50)" in lua_script(make_visitors(2), "127.0.0.1:1")
