"""``scrapewarden bench ...``: measure what scrapewarden costs on this machine.

The ``bench`` group is defined here at module level; each benchmark is one sub-command that
calls a ``run(...) -> dict`` function in :mod:`scrapewarden.bench` and prints its report as JSON
(``--json``) or as a table. Adding a benchmark means adding one command below.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text


@click.group()
def bench() -> None:
    """Benchmarks: run them on an otherwise idle machine."""


def register(group: click.Group) -> None:
    group.add_command(bench)


def _progress(line: str) -> None:
    # Progress goes to stderr so that stdout carries nothing but the report.
    click.echo(line, err=True)


def _load_options(command: Any) -> Any:
    """--duration, --connections and --rounds, shared by the load benchmarks."""
    options = [
        click.option(
            "--duration",
            type=click.IntRange(1, 3600),
            default=10,
            show_default=True,
            help="Seconds of load per target.",
        ),
        click.option(
            "--connections",
            type=click.IntRange(1, 1024),
            default=32,
            show_default=True,
            help="Concurrent connections.",
        ),
        click.option(
            "--rounds",
            type=click.IntRange(1, 50),
            default=1,
            show_default=True,
            help="Runs per target, interleaved round-robin; the median is reported.",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _finish(report: dict[str, Any], as_json: bool, show: Any, warning: str) -> None:
    """Print a load benchmark's report (JSON or table); exit 1 with ``warning`` when not ok."""
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        show(report)
    if not report["ok"]:
        click.echo(f"warning: {warning}", err=True)
        sys.exit(1)


@bench.command("middleware")
@_load_options
@click.option(
    "--policy",
    "policy_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="TOML policy for the scrapewarden target (default: the built-in bench policy).",
)
@click.option(
    "--load-tool",
    type=click.Choice(["auto", "wrk", "python"]),
    default="auto",
    show_default=True,
    help="auto: wrk when installed, else the built-in Python load generator.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def middleware(
    duration: int, connections: int, rounds: int, policy_path: Path | None, load_tool: str, as_json: bool
) -> None:
    """Throughput of one app bare, behind scrapewarden and behind slowapi (uvicorn, loopback).

    Exits with status 1 when a target answered fewer than 99% of requests with 2xx: that run
    measured refusals, not overhead.
    """
    from ..bench.middleware_bench import run

    try:
        report = run(
            duration=duration,
            connections=connections,
            rounds=rounds,
            policy=policy_path,
            load_tool=load_tool,  # type: ignore[arg-type]
            progress=_progress,
        )
    except (RuntimeError, FileNotFoundError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    _finish(
        report,
        as_json,
        _print_middleware,
        "a target answered fewer than 99% of requests with 2xx (see non-2xx)",
    )


def _print_middleware(report: dict[str, Any]) -> None:
    console = Console()
    title = (
        f"scrapewarden bench middleware: {report['load_tool']}, {report['duration_s']}s x "
        f"{report['rounds']} round(s), {report['connections']} connections, {report['visitors']} visitors"
    )
    table = Table(title=Text(title))
    for column in ("target", "req/s", "vs bare", "p99 ms", "non-2xx", "errors", "2xx share"):
        table.add_column(column, justify="left" if column == "target" else "right")
    for name, target in report["targets"].items():
        ratio = target.get("ratio_to_bare")
        table.add_row(
            Text(name),
            f"{target['requests_per_s']:,.0f}",
            "-" if ratio is None else f"{ratio:.2f}",
            f"{target['p99_ms']:.2f}",
            str(target["non_2xx"]),
            str(target["errors"]),
            Text(f"{target['share_2xx']:.2%}", style="" if target["ok"] else "bold red"),
        )
    console.print(table)
    if report["rounds"] > 1:
        console.print(Text("req/s and p99 are medians over the rounds; see --json for each round."))
    console.print(Text(f"policy for scrapewarden: {report['policy']}"))


@bench.command("engine")
@click.option(
    "--requests",
    "n_requests",
    type=click.IntRange(1000, 10_000_000),
    default=1_000_000,
    show_default=True,
    help="Synthetic requests to decide (generated before the clock starts).",
)
@click.option(
    "--actors",
    type=click.IntRange(10, 5_000_000),
    default=100_000,
    show_default=True,
    help="Distinct clients.",
)
@click.option("--seed", default=1, show_default=True, help="Seed of the synthetic traffic.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def engine(n_requests: int, actors: int, seed: int, as_json: bool) -> None:
    """Decisions per second of the in-process engine, every detector on, one core.

    The traffic mixes people (sessions, accounts, assets, shared addresses), anonymous visitors,
    a search crawler and scrapers. The same facts also go through a plain per-address limiter:
    the same-run baseline.
    """
    from ..bench.engine_bench import run

    _progress(f"generating {n_requests:,} requests from {actors:,} actors…")
    report = run(n_requests, actors, seed)
    if as_json:
        click.echo(json.dumps(report))
        return
    console = Console()
    table = Table(title=f"engine: {n_requests:,} decisions, {actors:,} actors")
    for column in ("", "decisions/s", "p50 µs", "p99 µs"):
        table.add_column(column, justify="right")
    base = report["baseline_plain_ip_limiter"]
    table.add_row(
        "scrapewarden engine", f"{report['decisions_per_s']:,}", str(report["p50_us"]), str(report["p99_us"])
    )
    table.add_row("plain per-IP limiter", f"{base['decisions_per_s']:,}", "", str(base["p99_us"]))
    console.print(table)
    console.print(Text(f"actions by actor kind: {report['actions_by_actor_kind']}"))


@bench.command("state")
@click.option(
    "--requests", "n_requests", type=click.IntRange(1000, 1_000_000), default=20_000, show_default=True
)
@click.option("--actors", type=click.IntRange(10, 1_000_000), default=5_000, show_default=True)
@click.option("--concurrency", type=click.IntRange(1, 1024), default=32, show_default=True,
              help="Requests in flight at once, as in a server.")  # fmt: skip
@click.option("--seed", default=1, show_default=True)
@click.option(
    "--record-allowed-shares",
    "shares_text",
    default="",
    metavar="S,S",
    help="Also run memory, SQLite and Redis with [privacy] record_allowed_share at each of these "
    "shares (e.g. 0,0.05), to read the cost of recording allowed requests in the same run.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def state(n_requests: int, actors: int, concurrency: int, seed: int, shares_text: str, as_json: bool) -> None:
    """Decisions per second and latency of one instance on memory, SQLite, Redis and a Redis
    Cluster (started here on loopback), with the Redis calls per decision."""
    from ..bench.state_bench import run

    try:
        shares = tuple(float(s) for s in shares_text.split(",") if s.strip())
    except ValueError as exc:
        raise click.BadParameter(
            "comma-separated numbers from 0 to 1", param_hint="'--record-allowed-shares'"
        ) from exc
    if any(not 0 <= s <= 1 for s in shares):
        raise click.BadParameter("each share is from 0 to 1", param_hint="'--record-allowed-shares'")
    _progress(f"{n_requests:,} requests per backend, {concurrency} in flight…")
    report = run(n_requests, actors, concurrency, seed, shares)
    if as_json:
        click.echo(json.dumps(report))
        return
    console = Console()
    table = Table(title=f"state: {n_requests:,} decisions per backend, {concurrency} in flight")
    for column in ("backend", "decisions/s", "vs memory", "p50 ms", "p99 ms", "Redis calls/decision"):
        table.add_column(column, justify="right")
    for name, row in report["backends"].items():
        if "skipped" in row:
            table.add_row(name, "skipped", "", "", "", row["skipped"])
            continue
        table.add_row(
            name,
            f"{row['decisions_per_s']:,}",
            f"{report['ratio_to_memory'][name]:.2f}×",
            str(row["p50_ms"]),
            str(row["p99_ms"]),
            str(row["redis_calls_per_decision"]),
        )
    console.print(table)
    for share, rows in report.get("record_allowed_share", {}).items():
        shown = ", ".join(
            f"{name} {row['decisions_per_s']:,}/s p99 {row['p99_ms']} ms"
            for name, row in rows.items()
            if "decisions_per_s" in row
        )
        console.print(Text(f"record_allowed_share={share}: {shown}"))


def _scenarios_command() -> click.Command:
    from .demo_cmds import scenario_options

    @bench.command("scenarios")
    @scenario_options(duration=180.0, persons=80)
    def scenarios(json_path: Path | None, **kw: Any) -> None:
        """The scenario suite, longer and seeded: compare policies with --policy.

        Same scoring as `scrapewarden demo`: records leaked per scraper and people bothered,
        for the protected site and for a per-address limit and no protection in the same run.
        """
        from .demo_cmds import _config, run_and_report

        run_and_report(_config(**kw), json_path, Console())

    return scenarios


_scenarios_command()


@bench.command("proxy")
@_load_options
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def proxy(duration: int, connections: int, rounds: int, as_json: bool) -> None:
    """scrapewarden proxy and nginx + auth_request to scrapewarden authz, against nginx with
    limit_req and a 10k-network block list, in front of the same nginx upstream (wrk, loopback).

    Needs nginx and wrk. A scrapewarden door this version lacks is reported as skipped. Exits
    with status 1 when a target answered fewer than 99% of requests with 2xx or failed.
    """
    from ..bench.proxy_bench import run

    try:
        report = run(duration=duration, connections=connections, rounds=rounds, progress=_progress)
    except (RuntimeError, FileNotFoundError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    _finish(report, as_json, _print_proxy, "a target failed or answered fewer than 99% of requests with 2xx")


def _print_proxy(report: dict[str, Any]) -> None:
    console = Console()
    title = (
        f"scrapewarden bench proxy: wrk, {report['duration_s']}s x {report['rounds']} round(s), "
        f"{report['connections']} connections, {report['visitors']} visitors"
    )
    table = Table(title=Text(title))
    columns = ("target", "req/s", "vs nginx", "p50 ms", "p99 ms", "added p99", "non-2xx", "errors")
    for column in columns:
        table.add_column(
            column, justify="left" if column == "target" else "right", no_wrap=column == "target"
        )
    skipped = []
    for name, target in report["targets"].items():
        if "skipped" in target:
            table.add_row(Text(name), Text("skipped", style="yellow"))
            skipped.append(f"{name} skipped: {target['skipped']}")
            continue
        ratio = target["ratio_to_nginx_limit_req"]
        table.add_row(
            Text(name),
            f"{target['requests_per_s']:,.0f}",
            "-" if ratio is None else f"{ratio:.2f}",
            f"{target['p50_ms']:.2f}",
            f"{target['p99_ms']:.2f}",
            f"{target['added_p99_ms']:+.2f}",
            Text(str(target["non_2xx"]), style="" if target["ok"] else "bold red"),
            str(target["errors"]),
        )
    console.print(table)
    for line in skipped:
        console.print(Text(line, style="yellow"))
    if report["rounds"] > 1:
        console.print(Text("req/s and latencies are medians over the rounds; see --json for each round."))
    console.print(
        Text(
            f"one worker per front; upstream: nginx, {report['upstream_body_bytes']} B JSON; "
            f"nginx limit_req blocks {report['blocked_networks']:,} networks; "
            "vs nginx: req/s over nginx_limit_req's; added p99: p99 minus the upstream's"
        )
    )


@bench.command("analyze")
@click.option(
    "--lines",
    type=click.IntRange(10_000, 50_000_000),
    default=1_000_000,
    show_default=True,
    help="Lines of the generated log.",
)
@click.option("--seed", default=1, show_default=True, help="Seed of the generated log.")
@click.option(
    "--f2b-lines",
    type=click.IntRange(1000, 10_000_000),
    default=100_000,
    show_default=True,
    help="Lines fed to fail2ban-regex (it reads a few thousand lines per second).",
)
@click.option(
    "--workdir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where the log and reports go (default: a new temporary directory).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def analyze_bench(lines: int, seed: int, f2b_lines: int, workdir: Path | None, as_json: bool) -> None:
    """The log analyzer on a generated, labelled log of people, verified crawlers and five kinds
    of scrapers: lines per second end to end, peak memory, and precision/recall per scraper kind,
    next to GoAccess, fail2ban-regex and a per-address limiter measured in the same run."""
    from ..bench.analyze_bench import run

    try:
        report = run(lines=lines, seed=seed, f2b_lines=f2b_lines, workdir=workdir, progress=_progress)
    except (RuntimeError, FileNotFoundError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    console = Console()
    table = Table(
        title=Text(f"bench analyze: {report['lines']:,} lines ({report['log_mb']} MB), seed {seed}")
    )
    for column in ("tool", "lines/s", "seconds", "peak MB", "detection F1"):
        table.add_column(column, justify="left" if column == "tool" else "right")
    sw = report["scrapewarden"]
    table.add_row("scrapewarden analyze", f"{sw['lines_per_s']:,}", f"{sw['seconds']:.2f}",
                  f"{sw['peak_rss_mb']:.0f}", f"{report['detection']['f1']:.4f}")  # fmt: skip
    for name in ("goaccess", "fail2ban_regex"):
        other = report[name]
        if "skipped" in other:
            table.add_row(name, Text("skipped", style="yellow"), "", "", "")
        else:
            table.add_row(name, f"{other['lines_per_s']:,}", f"{other['seconds']:.2f}",
                          f"{other['peak_rss_mb']:.0f}", "no detection")  # fmt: skip
    table.add_row("per-address limit", "", "", "", f"{report['baseline_per_ip_limit']['f1']:.4f}")
    console.print(table)
    kinds = Table(title="detection per scraper kind (addresses)")
    for column in ("kind", "addresses", "detected", "recall", "F1"):
        kinds.add_column(column, justify="left" if column == "kind" else "right")
    for kind, row in report["detection"]["kinds"].items():
        kinds.add_row(
            kind, str(row["addresses"]), str(row["detected"]), f"{row['recall']:.4f}", f"{row['f1']:.4f}"
        )
    console.print(kinds)
    det = report["detection"]
    console.print(
        Text(
            f"precision {det['precision']:.4f}, recall {det['recall']:.4f}; "
            f"people and crawlers wrongly flagged: {det['false_positives']} of {det['negatives']}; "
            f"ratios: {report['ratios']}"
        )
    )
