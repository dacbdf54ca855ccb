"""``scrapewarden bench middleware`` for real: three uvicorn servers on loopback, short load.

No timing thresholds: only the report's shape, that every target answered, and that nothing
was refused. Each run takes a few seconds (three servers start and stop).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from scrapewarden.bench.wrk_load import wrk_path

TARGETS = ("bare", "scrapewarden", "slowapi")
TIMEOUT = 180


def scrapewarden_cli(*args: str) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).with_name("scrapewarden")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "scrapewarden.cli.main"]
    return subprocess.run([*command, *args], capture_output=True, text=True, timeout=TIMEOUT)


def check_report(report: dict, load_tool: str) -> None:
    assert report["load_tool"] == load_tool
    assert report["duration_s"] == 1
    assert report["rounds"] == 1
    assert report["visitors"] > 1000
    assert report["ok"] is True
    assert set(report["targets"]) == set(TARGETS)
    for name in TARGETS:
        target = report["targets"][name]
        assert target["requests"] > 0, name
        assert target["requests_per_s"] > 0, name
        assert target["p99_ms"] > 0, name
        assert target["non_2xx"] == 0, name
        assert target["share_2xx"] == 1.0, name
        assert len(target["per_round"]) == 1
    assert "ratio_to_bare" not in report["targets"]["bare"]
    for name in ("scrapewarden", "slowapi"):
        ratio = report["targets"][name]["ratio_to_bare"]
        expected = report["targets"][name]["requests_per_s"] / report["targets"]["bare"]["requests_per_s"]
        assert ratio == pytest.approx(expected, abs=0.001)


@pytest.mark.skipif(wrk_path() is None, reason="wrk is not installed")
def test_middleware_json_with_wrk() -> None:
    result = scrapewarden_cli("bench", "middleware", "--json", "--duration", "1")
    assert result.returncode == 0, result.stderr
    check_report(json.loads(result.stdout), "wrk")
    # Progress lines go to stderr, never into the JSON.
    assert "round 1/1: slowapi" in result.stderr


def test_middleware_json_with_python_load() -> None:
    result = scrapewarden_cli("bench", "middleware", "--json", "--duration", "1", "--load-tool", "python")
    assert result.returncode == 0, result.stderr
    check_report(json.loads(result.stdout), "python")


def test_middleware_table() -> None:
    result = scrapewarden_cli("bench", "middleware", "--duration", "1", "--connections", "4")
    assert result.returncode == 0, result.stderr
    for name in TARGETS:
        assert name in result.stdout
    assert "vs bare" in result.stdout


def test_policy_that_flags_every_visitor_is_refused_before_any_server_starts(tmp_path: Path) -> None:
    policy = tmp_path / "strict.toml"
    policy.write_text('[deny]\nuser_agents = ["Mozilla"]\n', encoding="utf-8")
    result = scrapewarden_cli("bench", "middleware", "--json", "--duration", "1", "--policy", str(policy))
    assert result.returncode == 1
    assert "flags every simulated visitor" in result.stderr
    assert result.stdout == ""
    assert "round 1/1" not in result.stderr


def test_bench_engine_reports_throughput_and_baseline():
    from click.testing import CliRunner

    from scrapewarden.cli.main import main

    result = CliRunner().invoke(main, ["bench", "engine", "--requests", "5000", "--actors", "500", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["requests"] == 5000
    assert report["decisions_per_s"] > 0 and report["p99_us"] >= report["p50_us"] > 0
    assert report["baseline_plain_ip_limiter"]["decisions_per_s"] > 0
    kinds = report["actions_by_actor_kind"]
    # The synthetic scrapers are refused; the synthetic people are not blocked.
    assert sum(n for action, n in kinds["scraper"].items() if action != "allow") > 0
    assert kinds["human"].get("block", 0) == 0


@pytest.mark.parametrize("shares", ["0,abc", "0,1.5"])
def test_bench_state_refuses_a_share_that_is_not_one(shares: str) -> None:
    from click.testing import CliRunner

    from scrapewarden.cli.main import main

    result = CliRunner().invoke(main, ["bench", "state", "--record-allowed-shares", shares])
    assert result.exit_code == 2 and "--record-allowed-shares" in result.output


def test_bench_state_runs_each_share_on_memory_sqlite_and_redis(tmp_path: Path) -> None:
    from scrapewarden.bench.engine_bench import synthetic_requests
    from scrapewarden.bench.state_bench import _sampled_backends

    rows = _sampled_backends(synthetic_requests(2000, 200, 1), 8, 0.5)
    assert set(rows) == {"memory", "sqlite", "redis"}
    for name in ("memory", "sqlite"):
        assert rows[name]["decisions_per_s"] > 0 and rows[name]["p99_ms"] >= rows[name]["p50_ms"]
