"""``scrapewarden report compliance``: the compliance report (statement R11) from the state store.

A thin adapter: it reads the policy, the events, incidents, audit log and dashboard users from
the store, verifies the audit chain, and hands plain values to
:func:`scrapewarden.core.compliance.build_report`. Output: a text summary on the terminal (through
:func:`~.state_cmds.printable`), ``--json`` (layout in docs/compliance.md) and ``--html`` (one
self-contained page, escaped by Jinja2's autoescaping).
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from ..core.compliance import build_report
from ..core.event_figures import Period, tally_events
from ..core.measures import Inputs
from ..core.policy import Policy
from ..state.audit import entries, verify_store
from ..state.base import StateStore
from .state_cmds import _all_events, _state_option, _store, parse_ttl, printable


def register(group: click.Group) -> None:
    group.add_command(report)


@click.group()
def report() -> None:
    """Reports for the people scrapewarden answers to."""


@report.command("compliance")
@click.option(
    "--since",
    default="30d",
    show_default=True,
    help="Start of the period: a duration back from now (30d, 12h, 1w) or a UTC date/time "
    "(2026-11-01 or 2026-11-01T08:00:00).",
)
@click.option("--until", default=None, help="End of the period, in the same forms (default: now).")
@click.option(
    "--policy",
    "policy_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    envvar="SCRAPEWARDEN_POLICY",
    help="The TOML policy the servers run with (default: the built-in policy).",
)
@click.option(
    "--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), help="Write the JSON report."
)
@click.option(
    "--html", "html_path", type=click.Path(dir_okay=False, path_type=Path), help="Write the HTML report."
)
@_state_option
def compliance(
    since: str,
    until: str | None,
    policy_path: Path | None,
    json_path: Path | None,
    html_path: Path | None,
    state_url: str,
) -> None:
    """Which of the regulators' measures R1-R17 were on over the period and why, what each
    caught, incidents and their handling, and the audit log's state.

    It describes the configuration and the events recorded; it is not legal advice.
    """
    now = time.time()
    end = now if until is None else parse_when(until, now, "--until")
    start = parse_when(since, now, "--since")
    try:
        period = Period(start, end)
    except ValueError:
        raise click.BadParameter("--since must be before --until", param_hint="'--since'") from None
    policy, source, digest = _load_policy(policy_path)
    with _store(state_url) as store:
        # The chain is verified first: entries appended while the report is read come after
        # the head it names, and are not in it.
        verification = verify_store(store)
        audit = [e for e in entries(store) if e.seq <= verification.head_seq]
        figures = tally_events(_all_events(store), period)
        incidents = store.list_incidents()
        roles = _roles(store)
    result = build_report(
        Inputs(
            policy=policy,
            figures=figures,
            incidents=incidents,
            audit=audit,
            verification=verification,
            period=period,
            generated_at=now,
            policy_source=source,
            policy_sha256=digest,
            state_kind=state_kind(state_url),
            roles=roles,
        )
    )
    if json_path is not None:
        _write(json_path, json.dumps(result, indent=2, sort_keys=True) + "\n")
    if html_path is not None:
        from ..compliance_html import render_html

        _write(html_path, render_html(result))
    _print_summary(result)
    for path in (json_path, html_path):
        if path is not None:
            click.echo(f"wrote {printable(str(path))}")
    if not verification.ok:
        click.echo(f"warning: the audit log is broken at entry {verification.broken_seq}", err=True)


def _load_policy(path: Path | None) -> tuple[Policy, str, str]:
    from ..policy_file import PolicyError, load_policy, policy_from_env

    try:
        if path is None:
            return policy_from_env(), "", ""
        policy = load_policy(path)
    except PolicyError as exc:
        raise click.ClickException(f"invalid policy {path}:\n{exc}") from exc
    return policy, str(path.resolve()), hashlib.sha256(path.read_bytes()).hexdigest()


def _roles(store: StateStore) -> dict[str, int]:
    return dict(sorted(Counter(u.role for u in store.list_users()).items()))


def _write(path: Path, text: str) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise click.ClickException(f"cannot write {path}: {exc.strerror}") from exc


_DATE = re.compile(r"\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?")


def parse_when(text: str, now: float, option: str) -> float:
    """Epoch seconds for a duration back from ``now`` (``30d``) or an ISO date/time (UTC unless
    it names an offset). Bad text: exit 2 with what is accepted."""
    cleaned = text.strip()
    if _DATE.fullmatch(cleaned):
        try:
            when = datetime.fromisoformat(cleaned.replace(" ", "T").replace("Z", "+00:00"))
        except ValueError:
            pass
        else:
            if when.tzinfo is None:
                when = when.replace(tzinfo=UTC)
            return when.timestamp()
    try:
        return now - parse_ttl(cleaned)
    except click.BadParameter:
        raise click.BadParameter(
            f"{printable(text)!r} is neither a duration (30d, 12h, 1w) nor a date (2026-11-01)",
            param_hint=f"'{option}'",
        ) from None


def state_kind(url: str) -> str:
    """sqlite, redis or memory: the store's kind, never its URL (which may hold a password)."""
    scheme = url.strip().split(":", 1)[0].lower()
    return "redis" if scheme.startswith("redis") else scheme


def _print_summary(result: dict[str, Any]) -> None:
    period = result["period"]
    click.echo(f"compliance report {period['since_iso']} to {period['until_iso']}")
    for m in result["measures"]:
        why = m["why"][0] if m["why"] else ""
        click.echo(printable(f"  {m['id']:<4} {m['status']:<13} {why}"))
    events = result["events"]
    decisions = ", ".join(f"{k} {v}" for k, v in events["decisions"].items()) or "none"
    click.echo(f"events: {events['total']} (decisions: {decisions})")
    incidents = result["incidents"]
    stages = ", ".join(f"{k} {v}" for k, v in incidents["by_stage"].items() if v) or "none"
    click.echo(f"incidents: {incidents['total']} ({stages})")
    audit = result["audit"]
    state = "intact" if audit["ok"] else f"BROKEN at entry {audit['broken_seq']}"
    click.echo(f"audit log: {state}, head {audit['head_seq']} {audit['head']}")
    click.echo(result["disclaimer"])
