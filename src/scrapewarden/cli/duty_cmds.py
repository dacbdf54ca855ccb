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

from ..core.letters import LetterError
from ..core.policy import Policy
from ..incidents.book import IncidentBook
from ..incidents.tracking import LETTER_NAMES, letter_rows, overdue_letters, reply_days
from ..state.audit import current_user
from .incident_cmds import _book, _get
from .state_cmds import _actor_option, _iso, _state_option, _store, printable

KIND_NAMES = LETTER_NAMES

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
    from ..incidents.duties import WORK_OUT_ERRORS

    return WORK_OUT_ERRORS


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
    from ..incidents.duties import assess_incident

    if len(note) > 2000 or printable(note) != note:
        raise click.BadParameter("at most 2000 printable characters", param_hint="'--note'")
    policy, base = _policy(policy_path)
    with _store(state_url) as store:
        book = _book(store)
        incident = _get(book, incident_id)
        try:
            _, found, assessment = assess_incident(incident, policy, base_dir=base, high_risk=high_risk)
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


def _print_assessment(incident_id: str, a: Any, risk: Any, bad_rows: int) -> None:
    from ..incidents.assessment_text import assessment_lines

    for line in assessment_lines(incident_id, a, risk, bad_rows):
        _echo(line)


# -- letters --------------------------------------------------------------------------------------


@click.command("letters")
@click.argument("incident_id")
@click.option("--json", "as_json", is_flag=True, help="One JSON array.")
@_state_option
def letters(incident_id: str, as_json: bool, state_url: str) -> None:
    """The letters tracked for an incident: to whom, sent when, answered when; overdue ones flagged."""
    with _store(state_url) as store:
        incident = _get(_book(store), incident_id)
    rows = letter_rows(incident.letters, time.time())
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
    days = reply_days(_policy(policy_path)[0].incidents.notices, kind)
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
        reminders = overdue_letters(IncidentBook(store).list(open_only=True), now)
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
    from ..incidents.drafts import Operator
    from ..incidents.export import ExportWriteError, export_incident

    for label, value in (("--operator", operator_name), ("--operator-contact", operator_contact)):
        if len(value) > 500 or printable(value) != value:
            raise click.BadParameter("at most 500 printable characters", param_hint=f"'{label}'")
    policy, base = _policy(policy_path)
    who = actor or current_user()
    with _store(state_url) as store:
        incident = _get(_book(store), incident_id)
        try:
            made = export_incident(
                store,
                incident,
                policy,
                out,
                by=who,
                now=time.time(),
                base_dir=base,
                operator=Operator(operator_name, operator_contact),
            )
        except (ExportWriteError, *_work_out_errors()) as exc:
            raise click.ClickException(printable(str(exc))) from None
    done, people, records = made.done, made.duties.assessment.people, made.duties.assessment.records
    _echo(f"wrote {out}: {done.files} files, {people} people, {records} records")
    _echo(f"zip sha256:      {done.zip_sha256}")
    _echo(f"manifest sha256: {done.manifest_sha256}")
    _echo("the bundle holds personal data: share it only over an encrypted channel, with those who need it")


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
