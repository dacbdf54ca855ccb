"""``scrapewarden policy replay``: a draft policy against the policy in force, over access logs.

The same comparison as the dashboard's Policy page with the access-log source: every request
of the logs (the last ``--hours`` before the newest line, or all of them) goes through a fresh
engine for each policy (:func:`scrapewarden.core.replay.replay`), and the counts by action, the
requests decided differently and the lines that could not be read are printed. Addresses are
printed as they are in the log (it is the operator's own log, on the operator's terminal);
attacker-controlled text (paths, user agents) is escaped.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from ..policy_file import PolicyError, load_policy, policy_from_env
from .state_cmds import printable

INVALID = 2
"""Exit code for a policy that does not load, as ``scrapewarden check`` uses."""


def register(group: click.Group) -> None:
    group.add_command(policy)


@click.group()
def policy() -> None:
    """Work with policies: replay a draft over access logs."""


def _load(path: Path | None, what: str) -> Any:
    try:
        return load_policy(path) if path is not None else policy_from_env()
    except PolicyError as exc:
        for issue in exc.issues:
            click.echo(f"{what}: {issue}", err=True)
        sys.exit(INVALID)


def _when(ts: float | None) -> str:
    return "-" if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _request_line(method: str, path: str, query: str) -> str:
    return f"{method} {path}?{query}" if query else f"{method} {path}"


@policy.command("replay")
@click.argument("logs", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--draft", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True, help="The draft."
)
@click.option(
    "--policy",
    "current_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    envvar="SCRAPEWARDEN_POLICY",
    default=None,
    help="The policy in force (default: $SCRAPEWARDEN_POLICY, else the built-in defaults).",
)
@click.option(
    "--hours", type=click.FloatRange(min=0), default=0, show_default=True,
    help="Replay the last HOURS before the newest line (0: the whole log).",
)  # fmt: skip
@click.option("--show", type=click.IntRange(min=0), default=20, show_default=True,
              help="Requests decided differently to list.")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON.")
def replay_command(
    logs: tuple[Path, ...], draft: Path, current_path: Path | None, hours: float, show: int, as_json: bool
) -> None:
    """Replay access LOGS (combined, common or JSON lines; .gz too) under the policy in force and
    the DRAFT, and print what each would have allowed, throttled, challenged and blocked."""
    from ..core.replay import replay
    from ..logs.replay_source import read_requests

    current = _load(current_path, "policy in force")
    drafted = _load(draft, "draft")
    read = read_requests(logs, hours=hours if hours > 0 else float("inf"))
    result = replay(read.requests, current, drafted)
    actions = result.actions()
    report: dict[str, Any] = {
        "requests": result.requests,
        "lines": read.lines,
        "bad_lines": read.bad_lines,
        "bad_examples": read.bad_examples,
        "unreadable": read.unreadable,
        "truncated": read.truncated,
        "first": read.first_ts,
        "last": read.last_ts,
        "current": {a: result.current[a] for a in actions},
        "draft": {a: result.draft[a] for a in actions},
        "changed": result.changed_count,
        "stricter": result.stricter,
        "milder": result.milder,
        "examples": [
            {
                "ts": c.facts.now,
                "ip": c.facts.ip,
                "request": _request_line(c.facts.method, c.facts.path, c.facts.query),
                "user_agent": c.facts.user_agent,
                "current": c.current,
                "draft": c.draft,
                "reasons": list(c.draft_reasons),
            }
            for c in result.changed[:show]
        ],
    }
    for problem in read.unreadable:
        click.echo(f"cannot read {printable(problem)}", err=True)
    if as_json:
        click.echo(json.dumps(report))
        return
    click.echo(
        f"{result.requests} requests replayed ({_when(read.first_ts)} to {_when(read.last_ts)} UTC); "
        f"{read.lines} lines read, {read.bad_lines} malformed (skipped)"
        + ("; only the newest were kept" if read.truncated else "")
    )
    click.echo(f"{'':10}" + "".join(f"{a:>11}" for a in actions))
    click.echo(f"{'in force':10}" + "".join(f"{result.current[a]:>11}" for a in actions))
    click.echo(f"{'draft':10}" + "".join(f"{result.draft[a]:>11}" for a in actions))
    click.echo(
        f"{result.changed_count} decided differently: {result.stricter} more strictly, "
        f"{result.milder} more mildly"
    )
    for example in report["examples"]:
        click.echo(
            printable(
                f"  {_when(example['ts'])}  {example['ip']}  {example['request'][:120]}  "
                f"[{example['user_agent'][:80]}]  {example['current']} -> {example['draft']}  "
                f"({'; '.join(example['reasons'])[:160]})"
            )
        )
    for line in read.bad_examples:
        click.echo(printable(f"  malformed: {line}"), err=True)
