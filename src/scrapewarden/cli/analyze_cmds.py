"""``scrapewarden analyze``: were we scraped, by whom, and whose records left?

Reads access logs (see :mod:`scrapewarden.logs`), prints the actors that are not human, and
writes what was asked for: the JSON report, the HTML report, a block list.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from ..logs.bans_out import FORMATS


def register(group: click.Group) -> None:
    group.add_command(analyze)
    group.add_command(watch)


def _policy(path: Path | None) -> Any:
    from ..core.policy import Policy
    from ..policy_file import PolicyError, load_policy

    if path is None:
        return Policy()
    try:
        return load_policy(path)
    except PolicyError as exc:
        raise click.ClickException(f"invalid policy {path}:\n{exc}") from exc


def run_with_progress(
    paths: list[Path],
    policy: Any,
    fmt: str,
    memory_limit: str,
    console: Console,
    records_csv: Path | None = None,
) -> Any:
    """Run the analysis in a worker thread; show its steps and DuckDB's progress meanwhile."""
    from ..logs.analyzer import analyze
    from ..logs.reader import connect

    con = connect(memory_limit)
    size = sum(p.stat().st_size for p in paths)
    result: dict[str, Any] = {}
    step = {"name": "starting"}

    def work() -> None:
        try:
            result["analysis"] = analyze(
                paths,
                policy,
                fmt=fmt,
                con=con,
                records_csv=records_csv,
                progress=lambda name: step.__setitem__("name", name),
            )
        except BaseException as exc:  # handed to the main thread
            result["error"] = exc

    thread = threading.Thread(target=work, daemon=True)
    with Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task(f"{len(paths)} file(s), {size / 1e6:,.0f} MB", total=100)
        thread.start()
        while thread.is_alive():
            try:
                done = float(con.query_progress())
            except Exception:
                done = -1.0
            bar.update(task, description=step["name"], completed=max(0.0, done))
            thread.join(0.1)
    if "error" in result:
        error = result["error"]
        if isinstance(error, (ValueError, FileNotFoundError)):
            raise click.ClickException(str(error))
        raise error
    return result["analysis"]


def _when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")


def print_summary(analysis: Any, console: Console, top: int = 20) -> None:
    stats = analysis.stats
    console.print(
        Text(
            f"{stats.lines:,} lines ({stats.bad_lines:,} unreadable, {stats.recovered:,} recovered), "
            f"{_when(analysis.first_ts)} to {_when(analysis.last_ts)} UTC, "
            f"{len(analysis.addresses):,} addresses, analysed in {analysis.seconds:.1f}s"
        )
    )
    counts: dict[str, int] = {}
    for v in analysis.addresses.values():
        counts[v.verdict] = counts.get(v.verdict, 0) + 1
    console.print(Text("addresses by verdict: " + ", ".join(f"{k} {n:,}" for k, n in sorted(counts.items()))))
    table = Table(
        title=f"top {min(top, len(analysis.actors))} of {len(analysis.actors)} actors not judged human"
    )
    for column in ("actor", "verdict", "score", "addresses", "requests", "records", "why"):
        table.add_column(
            column, justify="right" if column in ("score", "addresses", "requests", "records") else "left"
        )
    for actor in analysis.actors[:top]:
        # Everything here came from the log, i.e. from the client: Text() never interprets markup.
        table.add_row(
            Text(f"{actor.kind} {actor.key}"[:60]),
            Text(actor.verdict, style={"scraper": "bold red", "suspicious": "yellow"}.get(actor.verdict, "")),
            f"{actor.score:.0f}",
            f"{len(actor.addresses):,}",
            f"{actor.requests:,}",
            f"{actor.distinct_records:,}",
            Text("; ".join(actor.reasons[:2])[:100]),
        )
    console.print(table)
    exposed = sum(len(r["records"]) for r in analysis.records_exposed)
    if exposed:
        console.print(
            Text(f"records served to scrapers and suspicious actors: {exposed:,} (see --json for the list)")
        )


@click.command()
@click.argument("logs", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["auto", "combined", "common", "json"]),
    default="auto",
    show_default=True,
    help="Log format; auto sniffs each file's first lines.",
)
@click.option(
    "--policy",
    "policy_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    envvar="SCRAPEWARDEN_POLICY",
    help="TOML policy: protected records, budgets, weights (default: the built-in policy).",
)
@click.option(
    "--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), help="Write the JSON report."
)
@click.option(
    "--html", "html_path", type=click.Path(dir_okay=False, path_type=Path), help="Write the HTML report."
)
@click.option(
    "--records",
    "records_csv",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write every record served to each scraper (CSV: actor, kind, id, first_ts, last_ts, requests).",
)
@click.option(
    "--bans", "ban_format", type=click.Choice(FORMATS), help="Write a block list in this format (--out)."
)
@click.option(
    "--out", "ban_path", type=click.Path(dir_okay=False, path_type=Path), help="Where --bans writes."
)
@click.option(
    "--ban-level",
    type=click.Choice(["scraper", "suspicious"]),
    default="scraper",
    show_default=True,
    help="Block addresses judged scraper, or also those judged suspicious.",
)
@click.option(
    "--memory-limit",
    default="1GB",
    show_default=True,
    help="DuckDB memory limit; beyond it, it spills to disk.",
)
@click.option("--top", type=click.IntRange(0, 10_000), default=20, show_default=True, help="Actors to print.")
@click.option(
    "--open-incidents",
    is_flag=True,
    help="File actors over the policy's [incidents] threshold as incidents in --state (joining open "
    "incidents about the same campaign or network).",
)
@click.option(
    "--incident-level",
    type=click.Choice(["scraper", "suspicious"]),
    default="scraper",
    show_default=True,
    help="With --open-incidents: actors judged scraper, or also those judged suspicious.",
)
@click.option(
    "--state",
    "state_url",
    envvar="SCRAPEWARDEN_STATE",
    default="sqlite:///scrapewarden.db",
    show_default=True,
    help="With --open-incidents: the state store the incidents go to.",
)
@click.option(
    "--as", "acting_as", envvar="SCRAPEWARDEN_USER", default=None, help="Who files them (audit log)."
)
def analyze(
    logs: tuple[Path, ...],
    fmt: str,
    policy_path: Path | None,
    json_path: Path | None,
    html_path: Path | None,
    records_csv: Path | None,
    ban_format: str | None,
    ban_path: Path | None,
    ban_level: str,
    memory_limit: str,
    top: int,
    open_incidents: bool,
    incident_level: str,
    state_url: str,
    acting_as: str | None,
) -> None:
    """Analyse access LOGS (combined, common or JSON lines; plain or .gz): who scraped, when,
    and which records each scraper was served.

    Addresses acting as one (rotating proxies) are reported together as a campaign. With
    protected records in the policy, the report lists every record each scraper was served,
    with first and last time.
    """
    if ban_format and not ban_path:
        raise click.UsageError("--bans needs --out FILE")
    console = Console(stderr=True)
    policy = _policy(policy_path)
    started = time.perf_counter()
    analysis = run_with_progress(list(logs), policy, fmt, memory_limit, console, records_csv)
    if records_csv:
        console.print(Text(f"records served to scrapers: {records_csv}"))
    print_summary(analysis, Console(), top)
    if json_path:
        from ..logs.report import to_json

        # Compact, and encoded in one go: json.dump would stream through the pure-Python encoder,
        # several times slower than dumps' C encoder on a report listing 250k records (the
        # listed records are capped, so the text stays a few tens of MB at most).
        json_path.write_text(json.dumps(to_json(analysis), separators=(",", ":")), encoding="utf-8")
        console.print(Text(f"JSON report: {json_path}"))
    if html_path:
        from ..logs.html import render_html

        html_path.write_text(render_html(analysis), encoding="utf-8")
        console.print(Text(f"HTML report: {html_path}"))
    if ban_format and ban_path:
        from ..logs.bans_out import render

        levels = ("scraper",) if ban_level == "scraper" else ("scraper", "suspicious")
        banned = [ip for ip, v in analysis.addresses.items() if v.verdict in levels]
        ban_path.write_text(
            render(
                banned,
                ban_format,
                comment=f"scrapewarden analyze: {len(banned)} addresses judged {ban_level}",
            )
        )
        console.print(Text(f"{ban_format} block list ({len(banned):,} addresses): {ban_path}"))
    if open_incidents:
        _file_incidents(analysis, policy, state_url, incident_level, acting_as, console)
    console.print(Text(f"done in {time.perf_counter() - started:.1f}s"))


def _file_incidents(
    analysis: Any, policy: Any, state_url: str, level: str, acting_as: str | None, console: Console
) -> None:
    from ..incidents.book import IncidentBook
    from ..logs.incidents_out import detections, pseudonymizer_for
    from ..state.audit import current_user
    from .state_cmds import _store

    levels = ("scraper",) if level == "scraper" else ("scraper", "suspicious")
    with _store(state_url) as store:
        found = detections(analysis, policy, pseudonymizer_for(policy, store), levels=levels)
        book = IncidentBook(store, team=policy.incidents.team)
        opened, joined = [], []
        for detection in found:
            incident, new = book.record(detection, by=acting_as or current_user())
            (opened if new else joined).append(incident.id)
    console.print(
        Text(
            f"incidents: {len(opened)} opened, {len(joined)} joined"
            + (f" ({', '.join(dict.fromkeys(opened + joined))})" if found else "")
        )
    )


@click.command()
@click.argument("log", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--bans", "ban_format", type=click.Choice(FORMATS), required=True, help="Block list format.")
@click.option(
    "--out", "ban_path", type=click.Path(dir_okay=False, path_type=Path), help="Keep this block list current."
)
@click.option(
    "--exec",
    "command",
    help="Run this shell command when the bans change; {file} is replaced by the block list's path "
    "(e.g. 'nft -f {file}').",
)
@click.option(
    "--policy",
    "policy_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    envvar="SCRAPEWARDEN_POLICY",
    help="TOML policy (default: the built-in policy).",
)
@click.option(
    "--state",
    "state_url",
    envvar="SCRAPEWARDEN_STATE",
    help="State store shared with the other doors, e.g. sqlite:////var/lib/scrapewarden/state.db "
    "(default: the policy's state key, else memory://).",
)
@click.option("--from-start", is_flag=True, help="Read the log from its beginning, not only new lines.")
@click.option(
    "--interval", type=click.FloatRange(0.05, 60), default=0.5, show_default=True, help="Poll interval."
)
@click.option("--duration", type=click.FloatRange(0.1), default=None, help="Stop after this many seconds.")
@click.option(
    "--metrics-listen",
    default=None,
    metavar="HOST:PORT",
    help="Serve Prometheus metrics at http://HOST:PORT/metrics (off by default); bind it to "
    "loopback or an admin network (docs/metrics.md).",
)
def watch(
    log: Path,
    ban_format: str,
    ban_path: Path | None,
    command: str | None,
    policy_path: Path | None,
    state_url: str | None,
    from_start: bool,
    interval: float,
    duration: float | None,
    metrics_listen: str | None,
) -> None:
    """Follow a live access LOG (across rotation and truncation), decide on every line with the
    live engine, and keep a block list current: written to --out and/or applied with --exec.

    Bans go into the state store with their expiry and escalation, so every door sharing the
    store (middleware, proxy) enforces them, and bans those doors impose reach the firewall.
    """
    from ..logs.tail import Tail
    from ..logs.watch import Watcher
    from ..warden import Warden

    if not ban_path and not command:
        raise click.UsageError("watch needs --out FILE or --exec COMMAND")
    from .preflight import check_door

    policy = _policy(policy_path)
    check_door(policy, state_url)
    metrics_at = None
    if metrics_listen:
        from ..doors.authz import parse_listen

        try:
            metrics_at = parse_listen(metrics_listen)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--metrics-listen") from None
    warden = Warden(policy, state=state_url)
    watcher = Watcher(warden, Tail(log, from_start=from_start), ban_format, out=ban_path, command=command)
    console = Console(stderr=True)
    console.print(Text(f"watching {log} ({ban_format} bans -> {ban_path or command})"))
    metrics = None
    if metrics_at is not None:
        from ..metrics_http import start_metrics_server

        metrics = start_metrics_server(*metrics_at)
        host, port = metrics.bound[0], metrics.bound[1]
        console.print(Text(f"metrics on http://{host}:{port}/metrics"))
    try:
        stats = watcher.run(interval, duration=duration)
    except KeyboardInterrupt:
        stats = watcher.stats
    finally:
        if metrics is not None:
            metrics.stop()
        warden.close()
    console.print(
        Text(
            f"{stats.lines:,} lines ({stats.bad_lines:,} unreadable), decisions {stats.decisions}, "
            f"{stats.banned:,} banned, block list pushed {stats.pushes} time(s)"
        )
    )
