"""The middleware benchmark: what putting scrapewarden in front of an app costs in throughput.

Three targets, one at a time, each in its own uvicorn process on loopback (so they never compete
for the CPU): the bare app, the app behind scrapewarden, and the app behind slowapi (an
established Python rate limiter, as a yardstick). Each gets the same load: wrk when installed,
else the small Python generator in :mod:`.py_load`. With several rounds the targets take turns
(round-robin, starting one later each round) and the median per target is reported, because
absolute numbers on a shared machine drift by tens of percent from run to run.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from .apps import POLICY_ENV, resolve_bench_policy
from .load_result import LoadResult
from .py_load import run_python_load
from .rounds import round_robin, sigterm_as_exit, summarize
from .servers import HOST, serve
from .traffic import Visitor, people_visitors
from .wrk_load import run_wrk, wrk_path

TARGETS: dict[str, str] = {
    "bare": "scrapewarden.bench.apps:bare_app",
    "scrapewarden": "scrapewarden.bench.apps:scrapewarden_app",
    "slowapi": "scrapewarden.bench.apps:slowapi_app",
}
LoadTool = Literal["auto", "wrk", "python"]


def choose_load_tool(wanted: LoadTool = "auto") -> Literal["wrk", "python"]:
    if wanted == "python":
        return "python"
    if wrk_path() is not None:
        return "wrk"
    if wanted == "wrk":
        raise FileNotFoundError("wrk is not installed (try --load-tool python)")
    return "python"


def _load_once(
    tool: str, port: int, visitors: list[Visitor], duration: int, connections: int, seed: int
) -> LoadResult:
    if tool == "wrk":
        return run_wrk(HOST, port, visitors, duration=duration, connections=connections, seed_offset=seed)
    return run_python_load(HOST, port, visitors, duration=duration, connections=connections, seed=seed)


def run(
    duration: int = 10,
    connections: int = 32,
    rounds: int = 1,
    *,
    policy: str | Path | None = None,
    load_tool: LoadTool = "auto",
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run the benchmark and return its report (see the module docstring and bench/README.md).

    ``policy`` is a TOML policy for the scrapewarden target; None means the built-in bench policy.
    ``progress`` receives one line per step (for a terminal); the report is the return value.
    """
    if duration < 1 or connections < 1 or rounds < 1:
        raise ValueError("duration, connections and rounds must be at least 1")
    say = progress or (lambda line: None)
    tool = choose_load_tool(load_tool)
    # The visitors must look like people to the very policy under test (the --policy one too).
    visitors = people_visitors(resolve_bench_policy(policy))
    if not visitors:
        raise RuntimeError("the policy flags every simulated visitor; nothing to measure")
    env = {POLICY_ENV: str(Path(policy).resolve())} if policy is not None else {}

    names = list(TARGETS)
    results: dict[str, list[LoadResult]] = {name: [] for name in names}
    with sigterm_as_exit():
        for round_number, seed, name in round_robin(names, rounds):
            say(f"round {round_number + 1}/{rounds}: {name} ({tool}, {duration}s, {connections} conn.)")
            with serve(TARGETS[name], env=env) as port:
                results[name].append(_load_once(tool, port, visitors, duration, connections, seed))

    targets = {name: summarize(results[name]) for name in names}
    bare = targets["bare"]["requests_per_s"]
    for name in names[1:]:
        targets[name]["ratio_to_bare"] = round(targets[name]["requests_per_s"] / bare, 3) if bare else None
    return {
        "load_tool": tool,
        "duration_s": duration,
        "connections": connections,
        "rounds": rounds,
        "visitors": len(visitors),
        "policy": str(policy) if policy is not None else "built-in",
        "ok": all(t["ok"] for t in targets.values()),
        "targets": targets,
    }
