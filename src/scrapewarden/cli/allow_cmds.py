"""``scrapewarden allow add|lift|list``: operator allows, shared with running servers through the
state store, as ``scrapewarden ban`` shares bans (see :mod:`scrapewarden.core.allows`).

An allow lets an actor through whatever bans and detectors say, while its requests are still
counted and the ones it lets through despite a refusal are recorded. Output goes through
:func:`~.state_cmds.printable`, since values and notes may quote what an attacker sent.
"""

from __future__ import annotations

import json
import time
from typing import Any

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..core.audit import AuditRecord
from ..state.audit import current_user
from ..state.base import Allow, BanKind
from .state_cmds import (
    _actor_option,
    _expires_in,
    _iso,
    _kind_option,
    _state_option,
    _store,
    parse_target,
    parse_ttl,
    printable,
)


def register(group: click.Group) -> None:
    group.add_command(allow)


@click.group()
def allow() -> None:
    """Allow actors whatever bans and detectors say (still counted), lift and list allows."""


@allow.command("add")
@click.argument("target")
@click.option(
    "--ttl",
    default="1d",
    show_default=True,
    help="How long: seconds (3600) or 90s, 30m, 1h, 2d, 1w, combined like 1h30m; 0 means until lifted.",
)
@click.option("--reason", default="", help="Why (a contract, a ticket), for the record and `allow list`.")
@_kind_option
@_actor_option
@_state_option
def allow_add(
    target: str, ttl: str, reason: str, kind: BanKind | None, actor: str | None, state_url: str
) -> None:
    """Allow TARGET: an IP address, a CIDR network, or (with --kind) an account, fingerprint or
    session. An allow on any of a request's actors wins over a ban on another of them."""
    kind, value = parse_target(target, kind)
    seconds = parse_ttl(ttl)
    now = time.time()
    who = actor or current_user()
    expires = None if seconds == 0 else now + seconds
    with _store(state_url) as store:
        stored = store.add_allow(Allow(kind, value, now, expires, reason, who))
        details = {"expires": stored.expires, "reason": reason}
        store.append_audit(AuditRecord(now, who, "allow.add", stored.key, details))
    until = "until lifted" if stored.expires is None else f"until {_iso(stored.expires)}"
    click.echo(f"allowed {printable(stored.key)} {until}")


@allow.command("lift")
@click.argument("target")
@_kind_option
@_actor_option
@_state_option
def allow_lift(target: str, kind: BanKind | None, actor: str | None, state_url: str) -> None:
    """Lift the allow on TARGET. Exits 1 if there was none."""
    kind, value = parse_target(target, kind)
    with _store(state_url) as store:
        removed = store.remove_allow(kind, value)
        if removed:
            record = AuditRecord(time.time(), actor or current_user(), "allow.remove", f"{kind}:{value}")
            store.append_audit(record)
    if not removed:
        click.echo(f"no allow for {printable(f'{kind}:{value}')}", err=True)
        raise click.exceptions.Exit(1)
    click.echo(f"lifted allow {printable(f'{kind}:{value}')}")


@allow.command("list")
@click.option("--all", "show_all", is_flag=True, help="Include expired allows.")
@click.option("--json", "as_json", is_flag=True, help="One JSON array, for scripts.")
@_state_option
def allow_list(show_all: bool, as_json: bool, state_url: str) -> None:
    """List allows in force (with --all, expired ones too)."""
    now = time.time()
    with _store(state_url) as store:
        allows = store.list_allows(None if show_all else now)
    if as_json:
        click.echo(json.dumps([allow_json(a, now) for a in allows], indent=2))
        return
    console = Console(highlight=False)
    if not allows:
        console.print(Text("no allows" + ("" if show_all else " in force")))
        return
    table = Table()
    for name in ("kind", "value", "expires in", "reason", "by"):
        table.add_column(name, overflow="fold")
    for a in allows:
        table.add_row(
            Text(a.kind),
            Text(printable(a.value)),
            Text(_expires_in(a, now)),  # type: ignore[arg-type]  # reads .expires only
            Text(printable(a.reason)),
            Text(printable(a.by)),
        )
    console.print(table)


def allow_json(a: Allow, now: float) -> dict[str, Any]:
    return {
        "kind": a.kind,
        "value": a.value,
        "created": a.created,
        "expires": a.expires,
        "expires_in": None if a.expires is None else round(a.expires - now, 3),
        "active": a.active(now),
        "reason": a.reason,
        "by": a.by,
    }
