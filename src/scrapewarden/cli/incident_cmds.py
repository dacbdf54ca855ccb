"""``scrapewarden incidents list|show|open|assign|advance``: who handles which scraping episode.

The duties that follow (assess, letters, export) are in :mod:`.duty_cmds`.

Incidents hold what attackers sent (user agents, paths in samples), so every value shown goes
through :func:`~.state_cmds.printable` into rich :class:`~rich.text.Text`, never markup.
"""

from __future__ import annotations

import ipaddress
import json
import time
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..core.incidents import STAGE_MEANING, STAGES, Incident, IncidentError, Stage, summary
from ..incidents.book import IncidentBook, IncidentNotFound
from ..state.audit import current_user
from .state_cmds import _actor_option, _iso, _state_option, _store, printable

SHOWN_RECORDS = 20


def register(group: click.Group) -> None:
    from .duty_cmds import attach  # assess, letters, letter, overdue, export, verify-bundle

    attach(incidents)
    group.add_command(incidents)


@click.group()
def incidents() -> None:
    """Scraping incidents: evidence, owner and team, and the steps open -> contained ->
    assessed -> notified -> closed (each step in the audit log)."""


def _book(store: Any) -> IncidentBook:
    return IncidentBook(store, clock=time.time)


def _get(book: IncidentBook, incident_id: str) -> Incident:
    try:
        return book.get(incident_id)
    except IncidentNotFound:
        raise click.ClickException(f"no incident {printable(incident_id)!r}") from None


@incidents.command("list")
@click.option("--stage", type=click.Choice(STAGES), default=None, help="Only incidents at this stage.")
@click.option("--open", "open_only", is_flag=True, help="Only incidents not closed.")
@click.option("--json", "as_json", is_flag=True, help="One JSON array of summaries.")
@_state_option
def incidents_list(stage: Stage | None, open_only: bool, as_json: bool, state_url: str) -> None:
    """List incidents, oldest first."""
    with _store(state_url) as store:
        found = _book(store).list(stage=stage, open_only=open_only)
    if as_json:
        click.echo(json.dumps([summary(i) for i in found], indent=2))
        return
    console = Console(highlight=False)
    if not found:
        console.print(Text("no incidents"))
        return
    table = Table()
    for name in ("id", "stage", "owner", "team", "opened", "last seen", "addresses", "records", "title"):
        table.add_column(name, overflow="fold")
    for i in found:
        s = summary(i)
        table.add_row(
            Text(printable(i.id)),
            Text(i.stage),
            Text(printable(i.owner) or "-"),
            Text(printable(i.team) or "-"),
            Text(_iso(i.opened_at)),
            Text(_iso(i.last_seen)),
            Text(str(s["addresses"])),
            Text(str(s["records"])),
            Text(printable(i.title)),
        )
    console.print(table)


@incidents.command("show")
@click.argument("incident_id")
@click.option("--records", "all_records", is_flag=True, help="Every exposed record, not the first 20.")
@click.option("--json", "as_json", is_flag=True, help="The whole incident as JSON.")
@_state_option
def incidents_show(incident_id: str, all_records: bool, as_json: bool, state_url: str) -> None:
    """Show one incident: its handling, actors, detectors, samples and exposed records."""
    with _store(state_url) as store:
        incident = _get(_book(store), incident_id)
    if as_json:
        click.echo(json.dumps(incident.to_dict(), indent=2))
        return
    i = incident
    out: list[str] = [
        f"{i.id}  {i.title}",
        f"stage: {i.stage} ({STAGE_MEANING[i.stage]})",
        f"owner: {i.owner or '-'}   team: {i.team or '-'}",
        f"seen: {_iso(i.first_seen)} .. {_iso(i.last_seen)}   requests counted: {i.requests}   "
        f"detections: {i.detections} ({', '.join(i.sources)})   highest score: {i.score:.1f}",
        "",
        "steps:",
        *(f"  {_iso(s.at)}  {s.stage:<10} {s.by}" + (f"  {s.note}" if s.note else "") for s in i.steps),
        "",
        "actors:",
    ]
    for name in ("ips", "networks", "accounts", "fingerprints", "user_agents"):
        values: list[str] = getattr(i.actors, name)
        if values:
            out.append(
                f"  {name} ({len(values)}): " + ", ".join(values[:10]) + (" ..." if len(values) > 10 else "")
            )
    if i.actors.more:
        out.append(f"  ({i.actors.more} more not kept)")
    if i.campaigns:
        out.append("  campaigns: " + ", ".join(i.campaigns))
    out += ["", "detectors:"]
    for name, hit in sorted(i.detectors.items()):
        out.append(f"  {name} x{hit.count}: " + "; ".join(hit.reasons))
    if i.samples:
        out += ["", "request samples:"]
        for sample in i.samples[:10]:
            when = _iso(float(sample.get("ts", 0.0)))
            request = f"{sample.get('method', '')} {sample.get('path', '')}"
            out.append(f"  {when}  {sample.get('action', '-')}  {request}  {sample.get('user_agent', '')}")
    shown = i.records if all_records else i.records[:SHOWN_RECORDS]
    more = "" if len(shown) == len(i.records) else f" (first {len(shown)}; --records for all)"
    truncated = " (list truncated; see the analysis CSV)" if i.records_truncated else ""
    out += ["", f"records exposed: {i.records_count}{more}{truncated}"]
    out += [f"  {r}" for r in shown]
    for line in out:
        click.echo(printable(line))


@incidents.command("open")
@click.option("--title", required=True, help="What happened, in one line.")
@click.option("--ip", "ips", multiple=True, help="An address involved (repeatable).")
@click.option("--network", "networks", multiple=True, help="A CIDR network involved (repeatable).")
@click.option("--account", "accounts", multiple=True, help="An account involved (repeatable).")
@click.option("--record", "records", multiple=True, metavar="KIND:ID", help="A record exposed (repeatable).")
@click.option("--note", default="", help="Why it was opened (kept with the first step).")
@click.option(
    "--policy",
    "policy_path",
    type=click.Path(exists=True, dir_okay=False),
    envvar="SCRAPEWARDEN_POLICY",
    default=None,
    help="The policy (its privacy settings decide how addresses and accounts are stored).",
)
@_actor_option
@_state_option
def incidents_open(
    title: str,
    ips: tuple[str, ...],
    networks: tuple[str, ...],
    accounts: tuple[str, ...],
    records: tuple[str, ...],
    note: str,
    policy_path: str | None,
    actor: str | None,
    state_url: str,
) -> None:
    """Open an incident by hand (a report from outside, a scraper found some other way).

    Addresses and accounts are stored as the event trail stores them (keyed pseudonyms unless
    the policy turns that off), so later detections about them join this incident."""
    from ..core.incidents import Actors, Detection
    from ..logs.incidents_out import pseudonymizer_for
    from .analyze_cmds import _policy
    from .state_cmds import parse_target

    policy = _policy(None if policy_path is None else Path(policy_path))
    addresses = [parse_target(ip, "ip")[1] for ip in ips]
    cidrs = [parse_target(n, "network")[1] for n in networks]
    for value in (title, note, *accounts, *records):
        if printable(value) != value or len(value) > 500:
            raise click.BadParameter("values must be at most 500 printable characters")
    with _store(state_url) as store:
        p = pseudonymizer_for(policy, store)
        v4, v6 = policy.network.ipv4_network_prefix, policy.network.ipv6_network_prefix
        nets = [p.network(ip, v4, v6) for ip in addresses]
        # A whole network given: the pseudonym its addresses' network gets, when it is one.
        nets += [_network_key(p, c, v4, v6) for c in cidrs]
        now = time.time()
        detection = Detection(
            ts=now,
            source="manual",
            verdict="reported",
            actors=Actors(
                ips=[p.ip(ip) for ip in addresses],
                networks=list(dict.fromkeys(nets)),
                accounts=[p.account(a) for a in accounts],
            ),
            records=list(dict.fromkeys(records)),
        )
        book = IncidentBook(store, team=policy.incidents.team)
        incident = book.open(detection, by=actor or current_user(), title=title, note=note)
    click.echo(printable(f"opened {incident.id}: {incident.title}"))


def _network_key(p: Any, cidr: str, v4: int, v6: int) -> str:
    network = ipaddress.ip_network(cidr, strict=False)
    if network.prefixlen == (v4 if network.version == 4 else v6):
        return str(p.network(str(network.network_address), v4, v6))
    return str(p.generic("net", str(network)))


@incidents.command("assign")
@click.argument("incident_id")
@click.option("--owner", default=None, help="Who handles it.")
@click.option("--team", default=None, help="Which team responds.")
@_actor_option
@_state_option
def incidents_assign(
    incident_id: str, owner: str | None, team: str | None, actor: str | None, state_url: str
) -> None:
    """Give an incident an owner and/or a team (audited)."""
    if owner is None and team is None:
        raise click.UsageError("give --owner, --team or both")
    for label, value in (("--owner", owner), ("--team", team)):
        if value is not None and (len(value) > 200 or printable(value) != value):
            raise click.BadParameter("must be at most 200 printable characters", param_hint=f"'{label}'")
    with _store(state_url) as store:
        book = _book(store)
        _get(book, incident_id)
        incident = book.assign(incident_id, owner=owner, team=team, by=actor or current_user())
    click.echo(printable(f"{incident.id}: owner {incident.owner or '-'}, team {incident.team or '-'}"))


@incidents.command("advance")
@click.argument("incident_id")
@click.option("--to", "to", type=click.Choice(STAGES), default=None, help="Target stage (default: the next).")
@click.option("--note", default="", help="What was done, or why (kept with the step and audited).")
@_actor_option
@_state_option
def incidents_advance(
    incident_id: str, to: Stage | None, note: str, actor: str | None, state_url: str
) -> None:
    """Move an incident to its next stage (or --to a later one), noting who and when."""
    with _store(state_url) as store:
        book = _book(store)
        _get(book, incident_id)
        try:
            incident = book.advance(incident_id, to, by=actor or current_user(), note=note)
        except IncidentError as exc:
            raise click.ClickException(printable(str(exc))) from None
    step = incident.steps[-1]
    click.echo(printable(f"{incident.id}: {step.stage} ({_iso(step.at)}, by {step.by})"))
