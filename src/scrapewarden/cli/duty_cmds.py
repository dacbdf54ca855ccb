"""``scrapewarden incidents assess|letters|letter|overdue|export|verify-bundle``: an incident's duties.

The officer's risk judgement and the letters' tracking records are kept with the incident (see
:mod:`scrapewarden.core.follow_up`); each change goes through the incident book and so into the
audit log. The people, the assessment and the drafts are worked out afresh from the incident's
evidence and the policy's people lookup each time (:mod:`scrapewarden.incidents.duties`): they are
personal data of the site's users, better not copied into the incident store.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import click

from ..core.breach import NOT_LEGAL_ADVICE, Assessment, format_utc
from ..core.letters import Letter, LetterError, LetterKind, overdue
from ..core.policy import Policy
from ..incidents.book import IncidentBook
from ..incidents.facts import facts_from_incident_dict
from ..state.audit import current_user, entries
from .incident_cmds import _book, _get
from .state_cmds import _actor_option, _iso, _state_option, _store, printable

KIND_NAMES: dict[str, LetterKind] = {
    "notice": "notice",
    "regulator": "regulator",
    "cease-and-desist": "cease_and_desist",
    "deletion-demand": "deletion_demand",
}

_policy_option = click.option(
    "--policy",
    "policy_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    envvar="SCRAPEWARDEN_POLICY",
    default=None,
    help="The policy: its [incidents.people] lookup, [[protected]] categories and [incidents.notices] "
    "sender (relative paths in it are taken from its directory).",
)


def attach(group: click.Group) -> None:
    for command in (assess, letters, letter, overdue_cmd, export, verify_bundle_cmd):
        group.add_command(command)


def _policy(path: Path | None) -> tuple[Policy, Path]:
    from .analyze_cmds import _policy as load

    policy: Policy = load(path)
    return policy, (path.resolve().parent if path is not None else Path.cwd())


def _work_out_errors() -> tuple[type[Exception], ...]:
    from jinja2 import TemplateError

    from ..core.breach import RegimeError
    from ..incidents.people import PeopleLookupError

    return (RegimeError, TemplateError, OSError, *(PeopleLookupError,))


def _echo(line: str) -> None:
    click.echo(printable(line))


# -- assess ---------------------------------------------------------------------------------------


@click.command("assess")
@click.argument("incident_id")
@click.option(
    "--high-risk/--low-risk",
    "high_risk",
    default=None,
    help="Record your judgement: a high risk to the people affected (GDPR art. 34, PIPEDA real "
    "risk of significant harm, NDB likely serious harm), or below that threshold. Without either, "
    "only show the assessment.",
)
@click.option("--note", default="", help="Why (kept with the judgement and audited).")
@click.option("--json", "as_json", is_flag=True, help="The assessment as JSON.")
@_policy_option
@_actor_option
@_state_option
def assess(
    incident_id: str,
    high_risk: bool | None,
    note: str,
    as_json: bool,
    policy_path: Path | None,
    actor: str | None,
    state_url: str,
) -> None:
    """Who was affected, where, and which notification clocks run, as deadlines.

    With --high-risk or --low-risk the judgement is recorded with the incident (audited as
    incident.assess) and the letters it calls for are tracked from then on (see `letters`)."""
    from ..incidents.duties import assess_facts

    if len(note) > 2000 or printable(note) != note:
        raise click.BadParameter("at most 2000 printable characters", param_hint="'--note'")
    policy, base = _policy(policy_path)
    with _store(state_url) as store:
        book = _book(store)
        incident = _get(book, incident_id)
        judged = high_risk if high_risk is not None else (incident.risk.high_risk if incident.risk else None)
        facts = facts_from_incident_dict(incident.to_dict())
        try:
            found, assessment = assess_facts(facts, policy, base_dir=base, high_risk=judged)
        except _work_out_errors() as exc:
            raise click.ClickException(printable(str(exc))) from None
        if high_risk is not None:
            incident = book.judge(
                incident_id, high_risk, by=actor or current_user(), note=note, assessment=assessment
            )
    if as_json:
        click.echo(json.dumps({"incident": incident.id, "assessment": assessment.to_dict()}, indent=2))
        return
    _print_assessment(incident.id, assessment, incident.risk, found.bad_rows)


def _print_assessment(incident_id: str, a: Assessment, risk: Any, bad_rows: int) -> None:
    _echo(f"{incident_id}: breach assessment (detected {format_utc(a.detected_at)})")
    if risk is None:
        _echo("risk judgement: none recorded (--high-risk or --low-risk records one)")
    else:
        word = {True: "HIGH risk", False: "below the high-risk threshold", None: "undecided"}[risk.high_risk]
        _echo(
            f"risk judgement: {word}, by {risk.by} at {_iso(risk.at)}"
            + (f": {risk.note}" if risk.note else "")
        )
    _echo(f"people affected: {a.people}   records: {a.records}   records with no person: {a.unknown_records}")
    if bad_rows:
        _echo(f"lookup rows without a person id: {bad_rows}")
    if a.categories:
        _echo("people per category: " + ", ".join(f"{k} {v}" for k, v in a.categories.items()))
    if a.countries:
        _echo("people per country: " + ", ".join(f"{k or '(none)'} {v}" for k, v in a.countries.items()))
    for j in a.jurisdictions:
        _echo(f"jurisdiction: {j.name} ({', '.join(j.countries)}): {j.people} people")
    if a.uncovered_countries:
        _echo("no regime known for: " + ", ".join(c or "(no country)" for c in a.uncovered_countries))
    for hint in a.risk_hints:
        _echo(f"hint: {hint}")
    if a.clocks:
        _echo("")
        _echo("clocks:")
    for c in a.clocks:
        applies = {True: "applies", False: "judged not to apply", None: "applies if the risk is judged high"}
        if c.trigger == "risk" and c.applies is None:
            state = "applies unless the breach is unlikely to result in a risk"
        else:
            state = applies[c.applies]
        when = f"{c.kind} {format_utc(c.due_at)}" if c.due_at is not None else "no fixed period"
        _echo(f"  [{c.regime}] {c.what}: {when} ({state})")
        _echo(f"      {c.wording}  [{c.source}]")
    _echo("")
    _echo(NOT_LEGAL_ADVICE)


# -- letters --------------------------------------------------------------------------------------


def _letter_rows(found: list[Letter], now: float) -> list[dict[str, Any]]:
    late = {r.letter_id: r for r in overdue(found, now, remind_every=0.0)}
    rows = []
    for x in found:
        row = x.to_dict()
        reminder = late.get(x.id)
        row["overdue"] = reminder.to_dict() if reminder is not None else None
        rows.append(row)
    return rows


@click.command("letters")
@click.argument("incident_id")
@click.option("--json", "as_json", is_flag=True, help="One JSON array.")
@_state_option
def letters(incident_id: str, as_json: bool, state_url: str) -> None:
    """The letters tracked for an incident: to whom, sent when, answered when; overdue ones flagged."""
    with _store(state_url) as store:
        incident = _get(_book(store), incident_id)
    rows = _letter_rows(incident.letters, time.time())
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        _echo(
            f"{incident.id}: no letters tracked yet "
            "(`incidents assess` plans them; `incidents letter` records one)"
        )
        return
    for row in rows:
        flag = "  OVERDUE: " + row["overdue"]["message"] if row["overdue"] else ""
        parts = [f"{row['kind'].replace('_', '-'):<17} {row['state']:<15} to {row['recipient']}"]
        if row["send_by"] is not None and row["sent_at"] is None:
            parts.append(f"send by {_iso(row['send_by'])}")
        if row["sent_at"] is not None:
            parts.append(f"sent {_iso(row['sent_at'])} by {row['sent_by']}")
        if row["reply_due_at"] is not None and row["replied_at"] is None:
            parts.append(f"reply due {_iso(row['reply_due_at'])}")
        if row["replied_at"] is not None:
            parts.append(f"replied {_iso(row['replied_at'])}: {row['reply_note']}")
        _echo("  ".join(parts) + flag)


@click.command("letter")
@click.argument("incident_id")
@click.option("--kind", "kind_name", type=click.Choice(list(KIND_NAMES)), required=True)
@click.option("--sent", "step", flag_value="sent", help="The letter went out now.")
@click.option("--replied", "step", flag_value="replied", help="The answer (an undertaking) arrived.")
@click.option(
    "--confirmed-deletion", "step", flag_value="confirmed-deletion", help="Deletion was confirmed in writing."
)
@click.option("--recipient", default="", help="Which letter, when there are several (e.g. gdpr), or to whom.")
@click.option("--note", default="", help="What came back, a reference, how it was sent.")
@_policy_option
@_actor_option
@_state_option
def letter(
    incident_id: str,
    kind_name: str,
    step: str | None,
    recipient: str,
    note: str,
    policy_path: Path | None,
    actor: str | None,
    state_url: str,
) -> None:
    """Record a step on one of an incident's letters (audited as letter.sent, letter.replied or
    deletion.confirmed). A cease-and-desist letter or deletion demand marked sent is given the
    policy's response_days / deletion_days to be answered."""
    if step is None:
        raise click.UsageError("give --sent, --replied or --confirmed-deletion")
    for label, value in (("--recipient", recipient), ("--note", note)):
        if len(value) > 500 or printable(value) != value:
            raise click.BadParameter("at most 500 printable characters", param_hint=f"'{label}'")
    kind = KIND_NAMES[kind_name]
    notices = _policy(policy_path)[0].incidents.notices
    days = {"cease_and_desist": notices.response_days, "deletion_demand": notices.deletion_days}.get(kind)
    with _store(state_url) as store:
        book = _book(store)
        _get(book, incident_id)
        try:
            _, changed = book.letter(
                incident_id,
                kind,
                step,  # type: ignore[arg-type]  # one of the flag values above
                by=actor or current_user(),
                which=recipient,
                note=note,
                reply_days=days,
            )
        except LetterError as exc:
            raise click.ClickException(printable(str(exc))) from None
    due = (
        f"; reply due {_iso(changed.reply_due_at)}"
        if changed.reply_due_at and changed.replied_at is None
        else ""
    )
    _echo(f"{incident_id}: {kind_name} to {changed.recipient}: {changed.state}{due}")


@click.command("overdue")
@click.option("--json", "as_json", is_flag=True, help="One JSON array.")
@_state_option
def overdue_cmd(as_json: bool, state_url: str) -> None:
    """Letters overdue across all incidents not closed: not sent by their deadline, or not
    answered by their reply date. Exits 1 when there are any (for a daily job)."""
    now = time.time()
    with _store(state_url) as store:
        found = IncidentBook(store).list(open_only=True)
    reminders = [r for i in found for r in overdue(i.letters, now, remind_every=0.0)]
    reminders.sort(key=lambda r: (-r.overdue_seconds, r.letter_id))
    if as_json:
        click.echo(json.dumps([r.to_dict() for r in reminders], indent=2))
    elif not reminders:
        _echo("nothing overdue")
    for r in reminders if not as_json else ():
        _echo(f"{r.incident_id}  {r.message} (due {_iso(r.due_at)})")
    if reminders:
        raise click.exceptions.Exit(1)


# -- the evidence bundle --------------------------------------------------------------------------


@click.command("export")
@click.argument("incident_id")
@click.option(
    "--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="The zip to write."
)
@click.option("--operator", "operator_name", default="", help="The scraper's operator, for the letters.")
@click.option("--operator-contact", default="", help="The operator's postal or e-mail address.")
@_policy_option
@_actor_option
@_state_option
def export(
    incident_id: str,
    out: Path,
    operator_name: str,
    operator_contact: str,
    policy_path: Path | None,
    actor: str | None,
    state_url: str,
) -> None:
    """Write the evidence bundle: evidence.json, exposed_records.csv, affected_people.csv, the
    drafts, the incident's audit trail and manifest.json with the SHA-256 of every file.

    The export is audited (incident.export, with the manifest's and the zip's SHA-256). The
    bundle holds personal data: hand it only to those who need it."""
    from ..incidents.bundle import bundle_files, export_bundle
    from ..incidents.drafts import Operator
    from ..incidents.duties import work_out

    for label, value in (("--operator", operator_name), ("--operator-contact", operator_contact)):
        if len(value) > 500 or printable(value) != value:
            raise click.BadParameter("at most 500 printable characters", param_hint=f"'{label}'")
    policy, base = _policy(policy_path)
    who = actor or current_user()
    with _store(state_url) as store:
        book = _book(store)
        incident = _get(book, incident_id)
        facts = facts_from_incident_dict(incident.to_dict())
        now = time.time()
        try:
            duties = work_out(
                facts,
                policy,
                drafted_at=now,
                base_dir=base,
                high_risk=incident.risk.high_risk if incident.risk else None,
                operator=Operator(operator_name, operator_contact),
            )
        except _work_out_errors() as exc:
            raise click.ClickException(printable(str(exc))) from None
        files = bundle_files(
            duties.facts, duties.found.exposure, duties.assessment, duties.drafts, letters=incident.letters
        )
        files["audit_trail.json"] = _audit_trail(store, incident.id)
        try:
            done = export_bundle(out, files, incident_id=incident.id)
        except OSError as exc:
            raise click.ClickException(printable(f"cannot write {out}: {exc.strerror or exc}")) from None
        from ..core.audit import AuditRecord

        store.append_audit(
            AuditRecord(
                now,
                who,
                "incident.export",
                incident.id,
                {
                    "file": out.name,
                    "files": done.files,
                    "manifest_sha256": done.manifest_sha256,
                    "zip_sha256": done.zip_sha256,
                    "people": duties.assessment.people,
                    "records": duties.assessment.records,
                },
            )
        )
    _echo(
        f"wrote {out}: {done.files} files, "
        f"{duties.assessment.people} people, {duties.assessment.records} records"
    )
    _echo(f"zip sha256:      {done.zip_sha256}")
    _echo(f"manifest sha256: {done.manifest_sha256}")
    _echo("the bundle holds personal data: share it only over an encrypted channel, with those who need it")


def _audit_trail(store: Any, incident_id: str) -> bytes:
    """The audit entries about this incident and the chain's head when exported: with the
    head written down elsewhere, anyone can later check these entries are still in the chain."""
    mine = [e.as_dict() for e in entries(store) if e.target == incident_id]
    head = store.audit_head()
    data = {
        "incident": incident_id,
        "entries": mine,
        "head": None if head is None else {"seq": head[0], "hash": head[1]},
    }
    return (json.dumps(data, sort_keys=True, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


@click.command("verify-bundle")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
def verify_bundle_cmd(path: Path, as_json: bool) -> None:
    """Recompute every SHA-256 in a bundle's manifest. Exits 1 naming each file that changed,
    went missing or was added."""
    from ..incidents.bundle import verify_bundle

    check = verify_bundle(path)
    if as_json:
        click.echo(json.dumps({"ok": check.ok, "files": check.files, "problems": check.problems}, indent=2))
    elif check.ok:
        _echo(f"bundle intact: {check.files} files match the manifest")
    else:
        for problem in check.problems:
            _echo(f"bundle BROKEN: {problem}")
    if not check.ok:
        raise click.exceptions.Exit(1)
