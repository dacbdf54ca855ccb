"""``scrapewarden audit verify`` and ``scrapewarden audit list``: read and check the audit log.

Entries hold what people and attackers typed (ban reasons, user agents quoted in details), so
everything printed goes through :func:`~.state_cmds.printable` or into JSON.
"""

from __future__ import annotations

import json
import re
import sys
from collections import deque

import click

from ..core.audit import GENESIS, AuditEntry
from ..state.audit import entries, verify_store
from .state_cmds import _iso, _state_option, _store, printable

_HASH = re.compile(r"[0-9a-f]{64}")


def register(group: click.Group) -> None:
    group.add_command(audit)


@click.group()
def audit() -> None:
    """The tamper-evident audit log: every ban, unban, policy change and incident step."""


@audit.command("verify")
@click.option(
    "--expect-head",
    metavar="HASH",
    default=None,
    help="A head hash written down earlier (the anchor): fail unless the chain still passes through it.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
@_state_option
def audit_verify(expect_head: str | None, as_json: bool, state_url: str) -> None:
    """Check every entry's hash and link. Exits 0 and prints the head hash when the log is
    intact; exits 1 naming the first altered, missing or reordered entry when it is not.

    Someone who can write the store could rebuild the whole chain: keep the printed head hash
    somewhere else and pass it back with --expect-head to catch that.
    """
    if expect_head is not None:
        expect_head = expect_head.strip().lower()
        if not _HASH.fullmatch(expect_head):
            raise click.BadParameter("a head hash is 64 hexadecimal characters", param_hint="'--expect-head'")
    with _store(state_url) as store:
        result = verify_store(store, expect_head=expect_head)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "ok": result.ok,
                    "verified": result.verified,
                    "head_seq": result.head_seq,
                    "head": result.head,
                    "broken_seq": result.broken_seq,
                    "problem": result.problem,
                }
            )
        )
    elif result.ok:
        noun = "entry" if result.verified == 1 else "entries"
        click.echo(f"audit log intact: {result.verified} {noun} verified")
        click.echo(f"head: {result.head_seq} {result.head if result.verified else GENESIS}")
    else:
        click.echo(f"audit log BROKEN at entry {result.broken_seq}: {result.problem}", err=True)
        click.echo(f"{result.verified} entries before it verified", err=True)
    if not result.ok:
        sys.exit(1)


@audit.command("list")
@click.option(
    "--limit", "-n", default=50, show_default=True, type=click.IntRange(min=0), help="Newest entries shown."
)
@click.option("--all", "show_all", is_flag=True, help="Every entry.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line (JSON Lines).")
@_state_option
def audit_list(limit: int, show_all: bool, as_json: bool, state_url: str) -> None:
    """Print audit entries, oldest first (the newest --limit, or --all)."""
    with _store(state_url) as store:
        kept: deque[AuditEntry] = deque(entries(store), maxlen=None if show_all else limit)
    for e in kept:
        if as_json:
            click.echo(json.dumps(e.as_dict()))
            continue
        details = e.details_json if e.details_json != "{}" else ""
        click.echo(printable(f"{e.seq:>6}  {_iso(e.ts)}  {e.actor:<12} {e.action:<18} {e.target}  {details}"))
