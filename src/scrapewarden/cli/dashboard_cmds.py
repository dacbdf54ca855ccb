"""``scrapewarden dashboard`` (the team's console) and ``scrapewarden users`` (its logins).

Passwords are read from standard input (a prompt without echo on a terminal), never from the
command line, where they would sit in the shell history and in every process listing.
"""

from __future__ import annotations

import getpass
import sys
import time

import click

from ..state.base import ROLES
from .state_cmds import _actor_option, _state_option, _store, parse_ttl, printable


def register(group: click.Group) -> None:
    group.add_command(dashboard)
    group.add_command(users)


FIRST_ADMIN = (
    "No dashboard users yet, and there is no default password. Create the first admin with\n"
    "    scrapewarden users add NAME --role admin --state {url}\n"
    "(the password is read from standard input), then log in at http://{listen}/login"
)


@click.command()
@click.option("--listen", default="127.0.0.1:8090", show_default=True, metavar="HOST:PORT")
@_state_option
@click.option(
    "--policy", type=click.Path(exists=True, dir_okay=False), default=None, help="Policy TOML file."
)
@click.option(
    "--secure-cookies/--no-secure-cookies",
    default=None,
    help="Mark the session cookie Secure (and send HSTS). Default: when the request came over "
    "https (behind a TLS proxy, together with --proxy-headers).",
)
@click.option(
    "--proxy-headers",
    "forwarded_from",
    default="",
    metavar="CIDRS",
    help="Trust X-Forwarded-Proto/For from these proxy addresses (comma-separated), "
    "e.g. 127.0.0.1 for a TLS proxy on the same host.",
)
@click.option("--session-hours", type=float, default=8.0, show_default=True, help="Session lifetime.")
@click.option(
    "--metrics-url",
    "metrics_urls",
    multiple=True,
    metavar="URL",
    help="A door's Prometheus endpoint (its --metrics-listen), e.g. http://127.0.0.1:9100/metrics; "
    "the Overview shows requests per second from it. Repeatable. Loopback only, unless the host "
    "is named with --metrics-host.",
)
@click.option(
    "--metrics-host",
    "metrics_hosts",
    multiple=True,
    metavar="HOST",
    help="A host other than loopback that --metrics-url may name (repeatable).",
)
@click.option(
    "--metrics-interval",
    type=click.FloatRange(0.5, 300),
    default=5.0,
    show_default=True,
    metavar="SECONDS",
    help="How often the dashboard reads the metrics for the Overview's requests per second "
    "(the last hour is kept and drawn).",
)
@click.option(
    "--access-log",
    "access_logs",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False),
    help="An access log (combined, common or JSON lines; .gz too) the Policy page may replay a "
    "draft over: all traffic, allowed requests included. Repeatable.",
)
@click.option("--log-level", default="info", show_default=True)
def dashboard(
    listen: str,
    state_url: str,
    policy: str | None,
    secure_cookies: bool | None,
    forwarded_from: str,
    session_hours: float,
    metrics_urls: tuple[str, ...],
    metrics_hosts: tuple[str, ...],
    metrics_interval: float,
    access_logs: tuple[str, ...],
    log_level: str,
) -> None:
    """Serve the web dashboard (overview, actors, bans, users) and its JSON API under /api/."""
    import uvicorn

    from ..dashboard.app import create_app
    from ..dashboard.live_metrics import MetricsUrlError, check_metrics_url
    from ..doors.authz import parse_listen
    from ..state.url import redact

    try:
        host, port = parse_listen(listen)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'--listen'") from exc
    if not 0 < session_hours <= 24 * 30:
        raise click.BadParameter("between 0 and 720 hours", param_hint="'--session-hours'")
    for url in metrics_urls:
        try:
            check_metrics_url(url, metrics_hosts)
        except MetricsUrlError as exc:
            raise click.BadParameter(str(exc), param_hint="'--metrics-url'") from exc
    app = create_app(
        state_url,
        policy=policy,
        secure_cookies=secure_cookies,
        session_seconds=int(session_hours * 3600),
        metrics_urls=metrics_urls,
        metrics_hosts=metrics_hosts,
        access_logs=access_logs,
        rate_interval=metrics_interval,
    )
    if not app.state.dashboard.store.list_users():
        click.echo(FIRST_ADMIN.format(url=redact(state_url), listen=listen), err=True)
    try:
        uvicorn.run(
            app,
            host=host,
            port=port,
            log_level=log_level.lower(),
            proxy_headers=bool(forwarded_from),
            forwarded_allow_ips=forwarded_from or None,
            server_header=False,
        )
    finally:
        app.state.dashboard.close()


@click.group()
def users() -> None:
    """Dashboard logins: add, remove, change passwords, list, make API tokens."""


def _read_password(confirm: bool = True) -> str:
    if sys.stdin.isatty():
        first = getpass.getpass("Password: ")
        if confirm and getpass.getpass("Again: ") != first:
            raise click.ClickException("the passwords differ")
        return first
    line = sys.stdin.readline()
    if not line:
        raise click.ClickException("no password on standard input")
    return line.rstrip("\r\n")


@users.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(ROLES), required=True)
@_state_option
def users_add(name: str, role: str, state_url: str) -> None:
    """Add a user; the password is read from standard input."""
    from ..dashboard.accounts import AccountError, add_user, check_name, check_password

    try:
        check_name(name)
        password = check_password(_read_password())
    except AccountError as exc:
        raise click.ClickException(str(exc)) from exc
    with _store(state_url) as store:
        try:
            add_user(store, name, role, password, now=time.time())
        except AccountError as exc:
            raise click.ClickException(str(exc)) from exc
    click.echo(f"added {name} ({role})")


@users.command("passwd")
@click.argument("name")
@_state_option
def users_passwd(name: str, state_url: str) -> None:
    """Set a new password (from standard input); the user's open sessions end."""
    from ..dashboard.accounts import AccountError, check_password, set_password

    try:
        password = check_password(_read_password())
    except AccountError as exc:
        raise click.ClickException(str(exc)) from exc
    with _store(state_url) as store:
        try:
            set_password(store, name, password, now=time.time())
        except AccountError as exc:
            raise click.ClickException(str(exc)) from exc
    click.echo(f"password of {printable(name)} changed; their sessions are over")


@users.command("remove")
@click.argument("name")
@_state_option
def users_remove(name: str, state_url: str) -> None:
    """Remove a user and their API tokens."""
    with _store(state_url) as store:
        if not store.remove_user(name):
            raise click.ClickException(f"no user {printable(name)!r}")
    click.echo(f"removed {printable(name)}")


@users.command("logout")
@click.argument("name")
@_actor_option
@_state_option
def users_logout(name: str, actor: str | None, state_url: str) -> None:
    """End every open dashboard session of NAME now (on every dashboard process sharing the
    store; API tokens stay: revoke them with 'users token NAME --revoke-all')."""
    from ..core.audit import AuditRecord
    from ..dashboard.sessions import end_all
    from ..state.audit import current_user

    with _store(state_url) as store:
        if store.get_user(name) is None:
            raise click.ClickException(f"no user {printable(name)!r}")
        now = time.time()
        end_all(store, name, now=now)
        store.append_audit(AuditRecord(now, actor or current_user(), "user.logout", name))
    click.echo(f"every session of {printable(name)} is over")


@users.command("list")
@_state_option
def users_list(state_url: str) -> None:
    """List users, their roles and how many API tokens each has."""
    with _store(state_url) as store:
        listed = store.list_users()
        tokens = store.list_tokens()
    if not listed:
        click.echo("no users; add the first admin with: scrapewarden users add NAME --role admin")
        return
    for user in listed:
        count = sum(1 for t in tokens if t.user == user.name)
        click.echo(f"{printable(user.name)}\t{user.role}\t{count} token(s)")


@users.command("token")
@click.argument("name")
@click.option("--ttl", default="90d", show_default=True, help="Lifetime: 30d, 12h, ... (0: no expiry).")
@click.option("--label", default="", help="What the token is for (shown in lists).")
@click.option("--revoke-all", is_flag=True, help="Instead, revoke every token of this user.")
@_state_option
def users_token(name: str, ttl: str, label: str, revoke_all: bool, state_url: str) -> None:
    """Make an API token for NAME (printed once; only its hash is stored)."""
    from ..dashboard.accounts import AccountError, make_token

    with _store(state_url) as store:
        if revoke_all:
            gone = sum(store.remove_token(t.digest) for t in store.list_tokens(name))
            click.echo(f"revoked {gone} token(s) of {printable(name)}")
            return
        seconds = parse_ttl(ttl)
        try:
            made = make_token(store, name, now=time.time(), ttl=seconds or None, label=label)
        except AccountError as exc:
            raise click.ClickException(str(exc)) from exc
    click.echo(made.token)
    click.echo("(shown once: store it now; send it as 'Authorization: Bearer <token>')", err=True)
