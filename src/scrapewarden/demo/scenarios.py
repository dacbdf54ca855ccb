"""The scenario suite: the same people and scrapers against three sites, scored.

Each *regime* is the demo site in its own process on a loopback port:

- ``protected``: behind scrapewarden with the demo policy (or ``--policy``);
- ``per_ip``: behind a per-address rate limit like nginx ``limit_req`` (``demo/baseline.py``);
- ``none``: no protection at all.

The same actors, built from the same seed, run against every regime at the same time, so the
three columns share one machine and one clock. Scoring counts, per actor, the distinct personal
records it received intact (record tokens, ``demo/records.py``), and, for people, how often
they were throttled, challenged or blocked and how long their pages took.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Mapping
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

from .actors.base import ActorResult, Target
from .dashboard import DemoLogin
from .records import demo_secret

REGIMES = ("protected", "per_ip", "none")
BASELINE_NAMES = {"per_ip": "per_ip_limit", "none": "none"}

ActorRun = Callable[[Target, float, random.Random], Awaitable["ActorResult | list[ActorResult]"]]


@dataclass
class ScenarioConfig:
    duration: float = 60.0
    seed: int = 7
    people: int = 20_000
    """People on the site (profiles /users/1..people)."""
    persons: int = 40
    """People browsing over HTTP (the light model)."""
    browser_people: int = 3
    """People browsing in real Chromium (needs /usr/bin/chromium)."""
    programs: bool = True
    """Also run Chromium, Scrapy, wget and httrack actors where installed."""
    time_scale: float = 0.15
    """Multiplies people's think times, so a one-minute demo holds many clicks."""
    policy: str | None = None
    state: str | None = None
    """State URL for the protected site; None: SCRAPEWARDEN_STATE, the policy's key, memory://."""
    under_attack: bool = False
    """Run the protected site under attack: everyone without clearance is challenged."""
    regimes: tuple[str, ...] = REGIMES


@dataclass
class RegimeRun:
    regime: str
    target: Target
    results: list[ActorResult] = field(default_factory=list)
    finished: int = 0
    planned: int = 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def site_process(regime: str, config: ScenarioConfig, dashboard: DemoLogin | None = None) -> Any:
    """Start ``python -m scrapewarden.demo.serve`` for one regime; yield its base URL.

    ``dashboard`` (protected regime): the site's process also serves the dashboard over its
    Warden there, with that one-off admin (the password goes over standard input)."""
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "scrapewarden.demo.serve",
        "--port",
        str(port),
        "--seed",
        str(config.seed),
        "--people",
        str(config.people),
        "--regime",
        regime,
    ]
    if config.state:
        cmd += ["--state", config.state]
    if config.policy:
        cmd += ["--policy", config.policy]
    if config.under_attack and regime == "protected":
        cmd.append("--under-attack")
    with_dashboard = dashboard is not None and regime == "protected"
    if with_dashboard:
        assert dashboard is not None
        cmd += ["--dashboard", dashboard.listen, "--dashboard-user", dashboard.user]
    proc = subprocess.Popen(
        cmd, stdin=subprocess.PIPE if with_dashboard else subprocess.DEVNULL, start_new_session=True
    )
    if with_dashboard:
        assert dashboard is not None and proc.stdin is not None
        proc.stdin.write(dashboard.password.encode() + b"\n")
        proc.stdin.close()
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        _wait_up(proc, regime, base + "/robots.txt", deadline)
        if with_dashboard:
            assert dashboard is not None
            _wait_up(proc, "dashboard of the " + regime, dashboard.url + "login", deadline)
        yield base
    finally:
        _stop(proc)


def _wait_up(proc: subprocess.Popen[bytes], what: str, url: str, deadline: float) -> None:
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"the {what} demo site exited with status {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1):  # loopback only
                return
        except urllib.error.HTTPError:
            return  # any HTTP answer means it is up
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"the {what} demo site did not start within 60 s")
        time.sleep(0.2)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=5)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


def build_actors(config: ScenarioConfig, rng: random.Random) -> list[tuple[str, ActorRun]]:
    """The traffic mix. Built once per regime from the same seed, so every regime sees the same."""
    from .actors.mix import traffic_mix

    return traffic_mix(config, rng)


async def _run_regime(run: RegimeRun, config: ScenarioConfig, deadline: float) -> None:
    actors = build_actors(config, random.Random(config.seed))
    run.planned = len(actors)

    async def one(name: str, actor: ActorRun, seed: int) -> None:
        try:
            outcome = await actor(run.target, deadline, random.Random(seed))
        except Exception as exc:  # an actor's crash is reported, not fatal to the suite
            failed = ActorResult(
                name=f"{name} (failed: {type(exc).__name__}: {str(exc)[:80]})", kind="scraper"
            )
            failed.errors += 1
            outcome = failed
        run.results.extend(outcome if isinstance(outcome, list) else [outcome])
        run.finished += 1

    seeds = random.Random(config.seed + 1)
    await asyncio.gather(*(one(name, actor, seeds.getrandbits(32)) for name, actor in actors))


def run_scenarios(
    config: ScenarioConfig,
    progress: Callable[[list[RegimeRun], float], None] | None = None,
    running: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Start the sites, run the traffic against all of them at once, score.

    ``running``: base URLs of regimes the caller started already (the demo keeps the protected
    site, and the dashboard inside it, up after the traffic)."""
    secret = demo_secret(config.seed)
    from .people import site_info

    info = site_info(config.seed, config.people)
    with ExitStack() as stack:
        runs = []
        for regime in config.regimes:
            base = (running or {}).get(regime) or stack.enter_context(site_process(regime, config))
            target = Target(
                base_url=base,
                secret=secret,
                people=config.people,
                handles=tuple(info["handles"]),
                first_names=tuple(info["first_names"]),
            )
            runs.append(RegimeRun(regime, target))
        started = time.monotonic()
        asyncio.run(_run_all(runs, config, started, progress))
        elapsed = time.monotonic() - started
    return score(runs, config, elapsed)


async def _run_all(
    runs: list[RegimeRun],
    config: ScenarioConfig,
    started: float,
    progress: Callable[[list[RegimeRun], float], None] | None,
) -> None:
    deadline = started + config.duration
    work = asyncio.gather(*(_run_regime(run, config, deadline) for run in runs))
    if progress is None:
        await work
        return
    task = asyncio.ensure_future(work)
    while not task.done():
        progress(runs, time.monotonic() - started)
        await asyncio.wait([task], timeout=0.5)
    progress(runs, time.monotonic() - started)
    task.result()


# -- scoring ---------------------------------------------------------------------------------------


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * q))], 1)


def summarize(results: list[ActorResult], records_total: int) -> dict[str, Any]:
    scrapers = [r for r in results if r.kind == "scraper"]
    humans = [r for r in results if r.kind == "human"]
    bots = [r for r in results if r.kind == "good_bot"]
    leaked: set[int] = set()
    for r in scrapers:
        leaked |= r.records
    latencies = [ms for r in humans for ms in r.latencies_ms]
    sessions = sum(r.sessions for r in humans)
    return {
        "actors": [r.as_dict() for r in sorted(results, key=lambda r: (r.kind, r.name))],
        "humans": {
            "sessions": sessions,
            "challenged": sum(1 for r in humans if r.challenged),
            "throttled": sum(1 for r in humans if r.throttled),
            "blocked": sum(1 for r in humans if r.blocked),
            "latency_ms_p50": _percentile(latencies, 0.5),
            "latency_ms_p99": _percentile(latencies, 0.99),
        },
        "scrapers": {
            "count": len(scrapers),
            "median_records_leaked": statistics.median([len(r.records) for r in scrapers]) if scrapers else 0,
            "records_leaked_total": len(leaked),
            "records_leaked_share": round(len(leaked) / records_total, 4) if records_total else 0.0,
        },
        "good_bots": {
            "count": len(bots),
            "blocked": sum(1 for r in bots if r.blocked),
            "requests": sum(r.requests for r in bots),
        },
    }


def _goals(
    protected: dict[str, Any], results: list[ActorResult], records_total: int, added: dict[str, Any]
) -> dict[str, Any]:
    """The issue's goals, measured. Reported, never used to tune anything."""
    by_name = {r.name: r for r in results}
    spread = [r for name, r in by_name.items() if name.startswith(("scraper 3", "scraper 4"))]
    spread_records: set[int] = set()
    for r in spread:
        spread_records |= r.records
    new_accounts = [r for name, r in by_name.items() if name.startswith("new account")]
    lookups = [
        r.records_before_first_action if r.records_before_first_action is not None else len(r.records)
        for r in new_accounts
    ]
    humans = protected["humans"]
    sessions = humans["sessions"] or 1
    return {
        "median_records_per_scraper": {
            "value": protected["scrapers"]["median_records_leaked"],
            "goal": "<= 50",
        },
        "spread_scrapers_share": {
            "value": round(len(spread_records) / records_total, 4) if records_total else 0.0,
            "goal": "<= 0.01 (scrapers 3 and 4 together)",
        },
        "new_accounts_max_lookups_before_stopped": {
            "value": max(lookups) if lookups else None,
            "goal": "< 100",
        },
        "people_blocked": {"value": humans["blocked"], "goal": "0"},
        "people_sessions_challenged_share": {
            "value": round(humans["challenged"] / sessions, 4),
            "goal": "<= 0.001",
        },
        "good_bot_blocked": {"value": protected["good_bots"]["blocked"], "goal": "0"},
        "added_latency_ms": added,
    }


def score(runs: list[RegimeRun], config: ScenarioConfig, elapsed: float) -> dict[str, Any]:
    summaries = {run.regime: summarize(run.results, config.people) for run in runs}
    report: dict[str, Any] = {
        "records_total": config.people,
        "duration_s": round(elapsed, 1),
        "seed": config.seed,
    }
    main = summaries.get("protected") or next(iter(summaries.values()))
    report.update(main)
    report["baselines"] = {BASELINE_NAMES[r]: summaries[r] for r in summaries if r in BASELINE_NAMES}
    if "protected" in summaries and "none" in summaries:
        added = {
            q: (
                round(
                    summaries["protected"]["humans"][f"latency_ms_{q}"]
                    - summaries["none"]["humans"][f"latency_ms_{q}"],
                    1,
                )
                if summaries["protected"]["humans"][f"latency_ms_{q}"] is not None
                and summaries["none"]["humans"][f"latency_ms_{q}"] is not None
                else None
            )
            for q in ("p50", "p99")
        }
        protected_results = next(run.results for run in runs if run.regime == "protected")
        report["goals"] = _goals(summaries["protected"], protected_results, config.people, added)
    return report
