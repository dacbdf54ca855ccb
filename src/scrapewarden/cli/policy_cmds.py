"""``scrapewarden check`` and ``scrapewarden init``: validate a policy file, write a starter one."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..core.clearance import captcha_from
from ..core.policy import Policy
from ..policy_file import PolicyError, load_policy, starter_policy_text

# Exit code for an invalid policy, shared with click's own usage errors: "fix your input".
INVALID = 2


def register(group: click.Group) -> None:
    group.add_command(check)
    group.add_command(init)


@click.command()
@click.argument("policy", type=click.Path(dir_okay=False, path_type=Path), envvar="SCRAPEWARDEN_POLICY")
@click.option(
    "--ignore-env",
    is_flag=True,
    help="Check the file alone, without applying SCRAPEWARDEN_* environment overrides.",
)
def check(policy: Path, ignore_env: bool) -> None:
    """Validate the POLICY file and summarise it.

    Exits 0 when the policy is valid and 2 when it is not, printing one line per problem to
    stderr. SCRAPEWARDEN_* environment overrides are applied, as they would be when serving.
    """
    try:
        loaded = load_policy(policy, env={} if ignore_env else None)
    except PolicyError as exc:
        # Plain text, not rich: key paths like protected[2] must not be read as markup, and
        # each problem must stay on one line for grep and editors.
        for issue in exc.issues:
            click.echo(str(issue), err=True)
        if any(issue.key_path for issue in exc.issues):
            click.echo(f"{policy}: {_count(len(exc.issues), 'problem')}, policy not loaded", err=True)
        sys.exit(INVALID)
    _summarise(policy, loaded, Console(highlight=False))


@click.command()
@click.argument("path", default="scrapewarden.toml", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--force", is_flag=True, help="Overwrite PATH if it already exists.")
@click.option(
    "--state",
    "state_url",
    envvar="SCRAPEWARDEN_STATE",
    default=None,
    metavar="URL",
    help="Record the change in this state store's audit log (default: $SCRAPEWARDEN_STATE, if set).",
)
@click.option(
    "--as", "actor", envvar="SCRAPEWARDEN_USER", default=None, metavar="NAME", help="Who, for the audit log."
)
def init(path: str, force: bool, state_url: str | None, actor: str | None) -> None:
    """Write a commented starter policy to PATH (default scrapewarden.toml; - for stdout)."""
    text = starter_policy_text()
    if path == "-":
        click.echo(text, nl=False)
        return
    try:
        # "x" creates the file only if it does not exist, so there is no window between a
        # check and the write in which someone else's file could be clobbered.
        with open(path, "w" if force else "x", encoding="utf-8") as handle:
            handle.write(text)
    except FileExistsError:
        click.echo(f"{path} already exists; use --force to overwrite it", err=True)
        sys.exit(1)
    except OSError as exc:
        click.echo(f"cannot write {path}: {exc.strerror or exc}", err=True)
        sys.exit(1)
    if state_url:
        _audit_policy_write(state_url, actor, path, text, force)
    click.echo(f"wrote {path}; edit the [[protected]] entries, then run: scrapewarden check {path}")


def _audit_policy_write(state_url: str, actor: str | None, path: str, text: str, force: bool) -> None:
    """A policy written by a person is a policy change: it goes into the audit log, with the
    file's SHA-256 so the log says exactly which policy was put in place."""
    import hashlib
    import os
    import time

    from ..core.audit import AuditRecord
    from ..state.audit import current_user
    from .state_cmds import _store

    details = {
        "sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
        "bytes": len(text.encode("utf-8")),
        "how": "init --force" if force else "init",
    }
    with _store(state_url) as store:
        record = AuditRecord(
            time.time(), actor or current_user(), "policy.write", os.path.abspath(path), details
        )
        store.append_audit(record)


def _summarise(path: Path, policy: Policy, console: Console) -> None:
    limits = policy.limits
    thresholds = policy.thresholds
    patterns = ", ".join(
        r.pattern + (f"?{r.query_param}=" if r.query_param else "") for r in policy.protected
    )
    rows = [
        ("mode", "observe (records, never acts)" if policy.observe else "enforce"),
        ("protected", _count(len(policy.protected), "resource") + (f": {patterns}" if patterns else "")),
        (
            "per account",
            _budget(
                limits.per_account.profiles_per_hour,
                limits.per_account.profiles_per_day,
                limits.per_account.requests_per_minute,
            ),
        ),
        (
            "per IP",
            _budget(
                limits.per_ip.profiles_per_hour,
                limits.per_ip.profiles_per_day,
                limits.per_ip.requests_per_minute,
            ),
        ),
        (
            "new accounts",
            f"younger than {limits.new_account.young_hours:g} h: "
            f"{limits.new_account.lookups_per_minute} lookups/minute, "
            f"{limits.new_account.lookups_per_hour}/hour",
        ),
        (
            "thresholds",
            f"throttle {thresholds.throttle:g}, challenge {thresholds.challenge:g}, "
            f"block {thresholds.block:g}",
        ),
        *_challenges(policy),
        ("partners", str(len(policy.identity.partners))),
    ]
    console.print(Text.assemble(("valid: ", "green"), (str(path), "bold")))
    table = Table(show_header=False, box=None, padding=(0, 2))
    table.add_column(style="dim")
    table.add_column()
    for label, value in rows:
        # Text, not a markup string: a pattern such as /a/[b]/{id} must print as written.
        table.add_row(label, Text(value))
    console.print(table)


def _challenges(policy: Policy) -> list[tuple[str, str]]:
    """Which challenge each risk band gets (never the CAPTCHA secret)."""
    challenge = policy.challenge
    rows = [
        (
            "challenge",
            f"proof-of-work {challenge.min_bits}-{challenge.max_bits} bits from score "
            f"{policy.thresholds.challenge:g}",
        )
    ]
    if challenge.captcha.provider:
        rows.append(("CAPTCHA", f"{challenge.captcha.provider} from score {captcha_from(policy):g}"))
    return rows


def _budget(per_hour: int, per_day: int, per_minute: int) -> str:
    return f"{per_hour} profiles/hour, {per_day}/day, {per_minute} requests/minute"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
