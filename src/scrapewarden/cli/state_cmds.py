"""``scrapewarden ban ...`` and ``scrapewarden events ...``: act on the shared state store.

Everything shown here may come from an attacker (paths, user agents, reasons quoting them), so
terminal output goes through :func:`printable` (control and bidi characters made visible) and
rich cells are :class:`~rich.text.Text` objects, never markup strings.
"""

from __future__ import annotations

import ipaddress
import json
import re
import time
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..core.audit import AuditRecord
from ..state.audit import USER_ENV, current_user
from ..state.base import BAN_KINDS, Ban, BanKind, Event, StateStore
from ..state.errors import StateError, StateURLError
from ..state.summary import summarize
from ..state.url import ENV_VAR, open_state

CLI_DEFAULT_STATE = "sqlite:///scrapewarden.db"
MAX_VALUE_LENGTH = 512

_state_option = click.option(
    "--state",
    "state_url",
    envvar=ENV_VAR,
    default=CLI_DEFAULT_STATE,
    show_default=True,
    show_envvar=True,
    metavar="URL",
    help=(
        "State store URL: sqlite:///relative.db, sqlite:////absolute.db, redis://host:6379/0 "
        "(rediss://, redis+cluster://h:p,h:p, redis+sentinel://h:p/service), or memory://. "
        "The library's own default, memory://, lives inside one process and is useless here, "
        "so the CLI defaults to a SQLite file in the current directory; point it at the same "
        "URL your server uses."
    ),
)
_actor_option = click.option(
    "--as",
    "actor",
    envvar=USER_ENV,
    default=None,
    metavar="NAME",
    help="Who is acting, for the audit log. Default: your login name.",
)
_kind_option = click.option(
    "--kind",
    type=click.Choice(BAN_KINDS),
    default=None,
    help="What TARGET is. Guessed when omitted: an IP address is 'ip', a CIDR is 'network'.",
)


def register(group: click.Group) -> None:
    group.add_command(ban)
    group.add_command(events)


@contextmanager
def _store(url: str) -> Iterator[StateStore]:
    try:
        store = open_state(url)
    except StateURLError as exc:
        raise click.BadParameter(str(exc), param_hint="'--state'") from exc
    except StateError as exc:
        raise click.ClickException(str(exc)) from exc
    if url.strip().lower().startswith("memory:"):
        click.echo("warning: memory:// state lives only inside this command; nothing persists", err=True)
    if hasattr(store, "local_fallback"):
        # A server keeps deciding on local state while Redis is away; a command must not
        # report a ban as stored (or list what it merely remembers) when Redis did not answer.
        store.local_fallback = False
    try:
        yield store
    except StateError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        store.close()


# -- ban ------------------------------------------------------------------------------------


@click.group()
def ban() -> None:
    """Add, remove and list bans (shared with running servers through the state store)."""


@ban.command("add")
@click.argument("target")
@click.option(
    "--ttl",
    default="1h",
    show_default=True,
    help="How long: seconds (3600) or 90s, 30m, 1h, 2d, 1w, combined like 1h30m; 0 means until removed.",
)
@click.option("--reason", default="", help="Why, for the record and for `ban list`.")
@_kind_option
@_actor_option
@_state_option
def ban_add(
    target: str, ttl: str, reason: str, kind: BanKind | None, actor: str | None, state_url: str
) -> None:
    """Ban TARGET: an IP address, a CIDR network, or (with --kind) an account, fingerprint or session."""
    kind, value = parse_target(target, kind)
    seconds = parse_ttl(ttl)
    now = time.time()
    with _store(state_url) as store:
        prior = store.prior_offences(kind, value)
        stored = store.add_ban(
            Ban(
                kind=kind,
                value=value,
                created=now,
                expires=None if seconds == 0 else now + seconds,
                reason=reason,
                offences=prior + 1,
                source="operator",
            )
        )
        details = {
            "expires": stored.expires,
            "reason": reason,
            "offences": stored.offences,
            "source": "operator",
        }
        store.append_audit(AuditRecord(now, actor or current_user(), "ban.add", stored.key, details))
    until = "until removed" if stored.expires is None else f"until {_iso(stored.expires)}"
    click.echo(f"banned {printable(stored.key)} {until} (offence #{stored.offences})")


@ban.command("remove")
@click.argument("target")
@_kind_option
@_actor_option
@_state_option
def ban_remove(target: str, kind: BanKind | None, actor: str | None, state_url: str) -> None:
    """Lift the ban on TARGET. Exits 1 if there was none. Its history still counts as an offence."""
    kind, value = parse_target(target, kind)
    with _store(state_url) as store:
        removed = store.remove_ban(kind, value)
        if removed:
            record = AuditRecord(time.time(), actor or current_user(), "ban.remove", f"{kind}:{value}")
            store.append_audit(record)
    if not removed:
        click.echo(f"no ban for {printable(f'{kind}:{value}')}", err=True)
        raise click.exceptions.Exit(1)
    click.echo(f"removed ban {printable(f'{kind}:{value}')}")


@ban.command("list")
@click.option("--all", "show_all", is_flag=True, help="Include expired bans.")
@click.option("--json", "as_json", is_flag=True, help="One JSON array, for scripts.")
@_state_option
def ban_list(show_all: bool, as_json: bool, state_url: str) -> None:
    """List bans in force (with --all, expired ones too)."""
    now = time.time()
    with _store(state_url) as store:
        bans = store.list_bans(None if show_all else now)
    if as_json:
        click.echo(json.dumps([_ban_json(b, now) for b in bans], indent=2))
        return
    console = Console(highlight=False)
    if not bans:
        console.print(Text("no bans" + ("" if show_all else " in force")))
        return
    table = Table()
    for name in ("kind", "value", "expires in", "reason", "offences", "source"):
        # fold, not ellipsis: a truncated value could make two different bans look the same.
        table.add_column(name, overflow="fold")
    for b in bans:
        table.add_row(
            Text(b.kind),
            Text(printable(b.value)),
            Text(_expires_in(b, now)),
            Text(printable(b.reason)),
            Text(str(b.offences)),
            Text(printable(b.source)),
        )
    console.print(table)


def _ban_json(b: Ban, now: float) -> dict[str, Any]:
    return {
        "kind": b.kind,
        "value": b.value,
        "created": b.created,
        "expires": b.expires,
        "expires_in": None if b.expires is None else round(b.expires - now, 3),
        "active": b.active(now),
        "reason": b.reason,
        "offences": b.offences,
        "source": b.source,
    }


# -- events ---------------------------------------------------------------------------------


@click.group()
def events() -> None:
    """Read the event trail: every throttle, challenge and block, with its reasons."""


@events.command("tail")
@click.option(
    "--limit", "-n", default=20, show_default=True, type=click.IntRange(min=0), help="Events shown."
)
@click.option("--follow", "-f", is_flag=True, help="Keep printing new events until Ctrl-C.")
@click.option(
    "--max-seconds",
    type=click.FloatRange(min=0),
    default=None,
    help="With --follow, stop after this many seconds.",
)
@click.option(
    "--interval",
    type=click.FloatRange(min=0.01),
    default=1.0,
    show_default=True,
    help="With --follow, seconds between polls.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line (JSON Lines).")
@_state_option
def events_tail(
    limit: int, follow: bool, max_seconds: float | None, interval: float, as_json: bool, state_url: str
) -> None:
    """Print the most recent events, oldest first; with --follow, keep printing new ones."""
    with _store(state_url) as store:
        last_id = 0
        for event in recent_events(store, limit):
            _print_event(event, as_json)
            last_id = event.id or last_id
        if not follow:
            return
        if last_id == 0 and limit == 0:
            last_id = _latest_id(store)
        deadline = None if max_seconds is None else time.monotonic() + max_seconds
        try:
            while deadline is None or time.monotonic() < deadline:
                fresh = store.events(since_id=last_id, limit=500)
                for event in fresh:
                    _print_event(event, as_json)
                    last_id = event.id or last_id
                if len(fresh) < 500:
                    pause = interval if deadline is None else min(interval, deadline - time.monotonic())
                    if pause > 0:
                        time.sleep(pause)
        except KeyboardInterrupt:
            pass


@events.command("summary")
@click.option(
    "--since",
    default="24h",
    show_default=True,
    help="Only events this recent (e.g. 30m, 24h, 7d); 0 for all.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
@_state_option
def events_summary(since: str, as_json: bool, state_url: str) -> None:
    """Actions taken and the challenge solve rate (passed answers per challenge decision)."""
    seconds = parse_ttl(since)
    cutoff = time.time() - seconds if seconds else None
    with _store(state_url) as store:
        summary = summarize(_all_events(store), since=cutoff)
    if as_json:
        click.echo(json.dumps(summary.as_dict(), sort_keys=True))
        return
    rate = summary.solve_rate
    click.echo(f"events: {summary.events}" + (f" (since {_iso(cutoff)})" if cutoff else ""))
    for action, count in sorted(summary.actions.items()):
        click.echo(f"  {action:<20} {count}")
    click.echo(
        f"challenges: {summary.challenges}, passed: {summary.passed}, solve rate: "
        + ("-" if rate is None else f"{rate:.1%}")
    )
    for label, counter in (
        ("passed by kind", summary.passed_by_kind),
        ("passed showing automation", summary.passed_with_signs),
        ("refused answers", summary.refused_by_reason),
    ):
        if counter:
            click.echo(f"  {label}: " + ", ".join(f"{k} {v}" for k, v in sorted(counter.items())))


def _all_events(store: StateStore) -> Iterator[Event]:
    since = 0
    while page := store.events(since_id=since, limit=1000):
        yield from page
        since = page[-1].id or since


def recent_events(store: StateStore, limit: int) -> list[Event]:
    """The newest ``limit`` events, oldest first, from any store."""
    if limit <= 0:
        return []
    fast = getattr(store, "recent_events", None)
    if callable(fast):
        result: list[Event] = fast(limit)
        return result
    # Stores without a "newest first" query: page through, keeping the last `limit`.
    kept: list[Event] = []
    since = 0
    while page := store.events(since_id=since, limit=1000):
        kept = (kept + page)[-limit:]
        since = page[-1].id or since
    return kept


def _latest_id(store: StateStore) -> int:
    newest = recent_events(store, 1)
    return (newest[0].id or 0) if newest else 0


def _print_event(event: Event, as_json: bool) -> None:
    if as_json:
        # ensure_ascii keeps escape sequences and bidi controls out of the terminal.
        click.echo(json.dumps(_event_json(event)))
        return
    action = event.action if event.enforced else f"{event.action}(observe)"
    reasons = "; ".join(event.reasons) or "-"
    request = f"{event.method} {event.path}"
    click.echo(
        printable(f"{_iso(event.ts)}  {action:<18} {event.score:5.1f}  {event.ip}  {request}  {reasons}")
    )


def _event_json(event: Event) -> dict[str, Any]:
    return {
        "id": event.id,
        "ts": event.ts,
        "time": _iso(event.ts),
        "action": event.action,
        "enforced": event.enforced,
        "score": event.score,
        "ip": event.ip,
        "method": event.method,
        "path": event.path,
        "user_agent": event.user_agent,
        "account": event.account,
        "session": event.session,
        "fingerprint": event.fingerprint,
        "record": event.record,
        "reasons": event.reasons,
    }


# -- parsing and display helpers ----------------------------------------------------------------

_TTL_PART = re.compile(r"(\d+)([smhdw])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_ttl(text: str) -> int:
    """Seconds in ``3600``, ``30m``, ``1h30m``...; 0 means forever. Bad text: exit 2."""
    cleaned = text.strip().lower()
    if cleaned.isdigit():
        return int(cleaned)
    if cleaned and _TTL_PART.sub("", cleaned) == "":
        return sum(int(n) * _UNIT_SECONDS[unit] for n, unit in _TTL_PART.findall(cleaned))
    raise click.BadParameter(
        f"{text!r} is not a duration; use seconds (3600) or 30m, 1h, 2d, 1w, 1h30m; 0 for forever",
        param_hint="'--ttl'",
    )


def parse_target(target: str, kind: BanKind | None) -> tuple[BanKind, str]:
    """Validate TARGET for ``kind`` (guessing ip/network when omitted); bad input exits 2."""
    value = target.strip()
    if kind is None:
        if _is_ip(value):
            kind = "ip"
        elif "/" in value and _is_network(value):
            kind = "network"
        else:
            raise click.BadParameter(
                f"{printable(target)!r} is neither an IP address nor a CIDR; "
                "pass --kind account|fingerprint|session for other targets",
                param_hint="'TARGET'",
            )
    if kind == "ip":
        try:
            address = ipaddress.ip_address(value)
        except ValueError:
            raise click.BadParameter(
                f"{printable(target)!r} is not an IP address", param_hint="'TARGET'"
            ) from None
        # The same canonical text the engine uses, so the ban matches.
        mapped = getattr(address, "ipv4_mapped", None)
        return kind, str(mapped or address)
    if kind == "network":
        try:
            return kind, str(ipaddress.ip_network(value, strict=False))
        except ValueError:
            raise click.BadParameter(
                f"{printable(target)!r} is not a CIDR network", param_hint="'TARGET'"
            ) from None
    if not value or len(value) > MAX_VALUE_LENGTH or printable(value) != value:
        raise click.BadParameter(
            f"{kind} must be 1-{MAX_VALUE_LENGTH} printable characters", param_hint="'TARGET'"
        )
    return kind, value


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _is_network(value: str) -> bool:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        return False
    return True


def printable(text: str) -> str:
    """``text`` with control, format (bidi) and unassigned characters shown as escapes.

    Terminal escape sequences and right-to-left overrides in an attacker's user agent must not
    reach the operator's terminal as anything but visible text.
    """
    if text.isprintable():
        return text
    out = []
    for ch in text:
        if ch.isprintable() or ch == " ":
            out.append(ch)
        elif unicodedata.category(ch) == "Zs":
            out.append(" ")
        else:
            code = ord(ch)
            out.append(
                f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"
            )
    return "".join(out)


def _iso(ts: float) -> str:
    try:
        return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError):
        return str(ts)


def _expires_in(b: Ban, now: float) -> str:
    if b.expires is None:
        return "never"
    left = b.expires - now
    if left <= 0:
        return f"expired {_duration(-left)} ago"
    return _duration(left)


def _duration(seconds: float) -> str:
    total = int(seconds)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if total >= size:
            parts.append(f"{total // size}{unit}")
            total %= size
    if total or not parts:
        parts.append(f"{total}s")
    return " ".join(parts[:2])
