"""The proxy benchmark: what protecting a non-Python site with scrapewarden costs, against nginx.

One run on loopback, one static upstream for everything (nginx serving the same 1 KB JSON for
any path, started once), and the same bounded wrk load for each target in turn:

- ``upstream``: the upstream alone;
- ``nginx_limit_req``: nginx as a reverse proxy with ``limit_req`` per client and a 10,000-network
  ``geo`` block list, what a site would use instead (the yardstick: every ratio is to it);
- ``scrapewarden_proxy``: ``scrapewarden proxy`` with the default policy plus the bench's
  protected ``/users/{id}`` route, session cookie and trusted proxy (127.0.0.1);
- ``nginx_auth_request``: nginx asking ``scrapewarden authz`` about every request.

Each front (nginx, scrapewarden) gets one worker and starts afresh for each of its runs, in its
own process group, stopped whatever happens (Ctrl-C, SIGTERM, a failed start). The traffic is
the middleware benchmark's: ~5000 simulated people with browser headers, their addresses in
X-Forwarded-For, mostly ``/users/<id>``. A scrapewarden target whose command does not exist
yet is reported as skipped, not as a failed run.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .apps import bench_policy
from .load_result import LoadResult
from .nginx_conf import LIMIT_BURST, LIMIT_RATE_PER_S, block_list, geo_entries, json_body
from .nginx_server import nginx_path, serve_nginx
from .rounds import round_robin, sigterm_as_exit, summarize
from .servers import HOST, free_port, serve_command
from .traffic import people_visitors
from .wrk_load import run_wrk, wrk_path

TARGETS = ("upstream", "nginx_limit_req", "scrapewarden_proxy", "nginx_auth_request")
BASELINE = "nginx_limit_req"
REQUIRED = ("upstream", "nginx_limit_req")
"""Without these there is nothing to compare with: their failure fails the run."""
WORKERS = 1
"""Worker processes of every front, nginx and scrapewarden alike (nginx: worker_processes 1)."""

QUIET = ("--log-level", "warning")
"""scrapewarden logs each refusal at info; like the middleware benchmark's uvicorn (and nginx's
``access_log off``), the benchmark keeps only warnings."""

POLICY_TOML = """\
# The proxy benchmark's policy: the defaults, plus what the benchmark site needs.
[network]
trusted_proxies = ["127.0.0.1/32"]   # wrk plays the reverse proxy: X-Forwarded-For is the client

[identity]
session_cookie = "sid"               # each simulated visitor is its own actor

[[protected]]
pattern = "/users/{id}"
kind = "profile"
sensitivity = 2
"""
"""The same policy as :func:`.apps.bench_policy` (a test holds them equal), as a file for the
``--policy`` option of ``scrapewarden proxy`` and ``scrapewarden authz``."""


def scrapewarden_command(*args: str) -> list[str]:
    """Run the ``scrapewarden`` CLI of this very interpreter (no reliance on PATH)."""
    return [
        sys.executable,
        "-c",
        "from scrapewarden.cli.main import main; main(prog_name='scrapewarden')",
        *args,
    ]


def missing_command(name: str) -> str | None:
    """Why ``scrapewarden <name>`` cannot run here, or None when it can."""
    try:
        from ..cli.main import main
    except Exception as exc:  # a broken CLI must not take the nginx figures down with it
        return f"the scrapewarden CLI does not load: {exc}"
    if name not in getattr(main, "commands", {}):
        return f"`scrapewarden {name}` is not available in this version"
    return None


def unavailable_targets() -> dict[str, str]:
    """The optional targets that cannot run here, with the reason."""
    needs = {"scrapewarden_proxy": "proxy", "nginx_auth_request": "authz"}
    reasons = {target: missing_command(command) for target, command in needs.items()}
    return {target: reason for target, reason in reasons.items() if reason is not None}


@dataclass(frozen=True, slots=True)
class _Run:
    """What every target of one run shares."""

    folder: Path
    upstream_port: int
    policy: Path
    blocklist: str
    blocked: int

    def nginx_folder(self, name: str, round_number: int) -> Path:
        return self.folder / f"{name}-{round_number + 1}"


@contextmanager
def _front(name: str, run: _Run, round_number: int) -> Iterator[int]:
    """Start target ``name`` in front of the upstream; yield the port wrk should load."""
    upstream = f"http://{HOST}:{run.upstream_port}"
    if name == "upstream":
        yield run.upstream_port
    elif name == "nginx_limit_req":
        values = {
            "UPSTREAM_PORT": run.upstream_port,
            "RATE": LIMIT_RATE_PER_S,
            "BURST": LIMIT_BURST,
            "BLOCKED_COUNT": run.blocked,
        }
        files = {"blocklist.conf": run.blocklist}
        with serve_nginx("limit_req.conf", run.nginx_folder(name, round_number), values, files) as port:
            yield port
    elif name == "scrapewarden_proxy":
        port = free_port()
        command = scrapewarden_command(
            "proxy",
            "--upstream",
            upstream,
            "--listen",
            f"{HOST}:{port}",
            "--policy",
            str(run.policy),
            "--workers",
            str(WORKERS),
            *QUIET,
        )
        with serve_command(command, port, name="scrapewarden proxy") as ready:
            yield ready
    elif name == "nginx_auth_request":
        with ExitStack() as stack:
            authz_port = free_port()
            command = scrapewarden_command(
                "authz", "--listen", f"{HOST}:{authz_port}", "--policy", str(run.policy), *QUIET
            )
            stack.enter_context(serve_command(command, authz_port, name="scrapewarden authz"))
            values = {"UPSTREAM_PORT": run.upstream_port, "AUTHZ_PORT": authz_port}
            yield stack.enter_context(
                serve_nginx("auth_request.conf", run.nginx_folder(name, round_number), values)
            )
    else:
        raise ValueError(f"unknown target {name!r}")


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def compare(targets: dict[str, dict[str, Any]]) -> None:
    """Add each measured target's ratio to the baseline's req/s and its p99 minus the upstream's."""
    baseline = targets[BASELINE]["requests_per_s"]
    upstream_p99 = targets["upstream"]["p99_ms"]
    for target in targets.values():
        if "skipped" in target:
            continue
        target["ratio_to_nginx_limit_req"] = (
            round(target["requests_per_s"] / baseline, 3) if baseline else None
        )
        target["added_p99_ms"] = round(target["p99_ms"] - upstream_p99, 3)


def run(
    duration: int = 10,
    connections: int = 32,
    rounds: int = 1,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run the benchmark and return its report (see the module docstring and bench/README.md).

    ``progress`` receives one line per step (for a terminal); the report is the return value.
    Raises FileNotFoundError when wrk or nginx is not installed, RuntimeError when the upstream
    or the nginx yardstick fails.
    """
    if duration < 1 or connections < 1 or rounds < 1:
        raise ValueError("duration, connections and rounds must be at least 1")
    if wrk_path() is None:
        raise FileNotFoundError("wrk is not installed (apt-get install wrk)")
    if nginx_path() is None:
        raise FileNotFoundError("nginx is not installed (apt-get install nginx)")
    say = progress or (lambda line: None)
    visitors = people_visitors(bench_policy())
    if not visitors:
        raise RuntimeError("the bench policy flags every simulated visitor; nothing to measure")
    skipped = unavailable_targets()
    for name, reason in skipped.items():
        say(f"skipping {name}: {reason}")
    failed: set[str] = set()
    names = [name for name in TARGETS if name not in skipped]
    results: dict[str, list[LoadResult]] = {name: [] for name in names}
    networks = block_list(visitor.ip for visitor in visitors)

    with sigterm_as_exit(), tempfile.TemporaryDirectory(prefix="scrapewarden-bench-proxy-") as tmp:
        folder = Path(tmp)
        policy = folder / "policy.toml"
        policy.write_text(POLICY_TOML, encoding="utf-8")
        say("starting the upstream (nginx, 1 KB JSON)")
        with serve_nginx("upstream.conf", folder / "upstream", {"BODY": json_body()}) as upstream_port:
            shared = _Run(folder, upstream_port, policy, geo_entries(networks), len(networks))
            for round_number, seed, name in round_robin(names, rounds):
                if name in skipped:
                    continue
                say(f"round {round_number + 1}/{rounds}: {name} (wrk, {duration}s, {connections} conn.)")
                try:
                    with _front(name, shared, round_number) as port:
                        result = run_wrk(
                            HOST, port, visitors, duration=duration, connections=connections, seed_offset=seed
                        )
                except RuntimeError as exc:
                    if name in REQUIRED:
                        raise
                    # One broken scrapewarden door must not cost the other figures.
                    skipped[name] = f"failed in round {round_number + 1}: {_first_line(exc)}"
                    failed.add(name)
                    say(f"{name}: {skipped[name]}")
                    continue
                results[name].append(result)

    targets: dict[str, dict[str, Any]] = {}
    for name in TARGETS:
        targets[name] = {"skipped": skipped[name]} if name in skipped else summarize(results[name])
    compare(targets)
    return {
        "load_tool": "wrk",
        "duration_s": duration,
        "connections": connections,
        "rounds": rounds,
        "visitors": len(visitors),
        "workers": WORKERS,
        "upstream_body_bytes": len(json_body()),
        "blocked_networks": len(networks),
        "ok": not failed and all(t["ok"] for t in targets.values() if "skipped" not in t),
        "targets": targets,
    }
