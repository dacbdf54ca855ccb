"""``scrapewarden proxy``: the reverse proxy in front of any site (see docs/deploy/proxy.md)."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

import click

from ..state.url import ENV_VAR


def _host_port(text: str, default_port: int) -> tuple[str, int]:
    """``host:port``, ``[v6]:port``, ``host`` or ``:port``."""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest.lstrip(":")
    else:
        host, sep, port = text.rpartition(":")
        if not sep:
            host, port = text, ""
    try:
        return host or "127.0.0.1", int(port) if port else default_port
    except ValueError:
        raise click.BadParameter(f"not host:port: {text!r}") from None


def _upstream(text: str) -> tuple[str, int]:
    parts = urlsplit(text if "://" in text else "http://" + text)
    if parts.scheme != "http":
        raise click.BadParameter("the upstream must be http:// (TLS to the upstream is not supported)")
    if not parts.hostname:
        raise click.BadParameter(f"no host in {text!r}")
    try:
        return parts.hostname, parts.port or 80
    except ValueError:
        raise click.BadParameter(f"bad port in {text!r}") from None


@click.command("proxy")
@click.option(
    "--upstream", required=True, metavar="URL", help="The site to protect, e.g. http://127.0.0.1:8000."
)
@click.option("--listen", default="127.0.0.1:8080", show_default=True, metavar="HOST:PORT")
@click.option(
    "--policy", default=None, metavar="FILE", help="Policy TOML (default: SCRAPEWARDEN_POLICY or built-in)."
)
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 256))
@click.option(
    "--state",
    default=None,
    envvar=ENV_VAR,
    metavar="URL",
    help="State store for bans and events, e.g. sqlite:////var/lib/scrapewarden.db "
    "(default: the policy's state key, else memory://).",
)
@click.option(
    "--max-body", default=100 * 1024 * 1024, show_default=True, type=click.IntRange(0), metavar="BYTES"
)
@click.option(
    "--max-header-bytes", default=32 * 1024, show_default=True, type=click.IntRange(1024), metavar="BYTES"
)
@click.option(
    "--timeout",
    default=60.0,
    show_default=True,
    type=click.FloatRange(0.001),
    metavar="S",
    help="Seconds the upstream may stay silent before the client gets a 504.",
)
@click.option("--connect-timeout", default=5.0, show_default=True, type=click.FloatRange(0.001), metavar="S")
@click.option(
    "--header-timeout",
    default=15.0,
    show_default=True,
    type=click.FloatRange(0.001),
    metavar="S",
    help="Seconds a client has to send a complete request head (408 after).",
)
@click.option("--grace", default=10.0, show_default=True, type=click.FloatRange(0), metavar="S")
@click.option(
    "--forwarded-proto",
    type=click.Choice(["http", "https"]),
    default="http",
    show_default=True,
    help="X-Forwarded-Proto to send: https when a TLS terminator sits in front of the proxy.",
)
@click.option(
    "--under-attack",
    is_flag=True,
    help="Challenge every visitor without clearance (the policy's challenge.under_attack), "
    "static assets excepted.",
)
@click.option(
    "--log-level", default="warning", show_default=True, type=click.Choice(["debug", "info", "warning"])
)
def proxy(
    upstream: str,
    listen: str,
    policy: str | None,
    workers: int,
    state: str | None,
    max_body: int,
    max_header_bytes: int,
    timeout: float,
    connect_timeout: float,
    header_timeout: float,
    grace: float,
    forwarded_proto: str,
    under_attack: bool,
    log_level: str,
) -> None:
    """Reverse proxy: decide on every request, forward what is allowed to UPSTREAM.

    SIGHUP reloads the policy without dropping connections; SIGTERM drains in-flight requests.
    """
    try:
        from ..doors.proxy import ProxySettings
        from ..doors.proxy_workers import run
    except ModuleNotFoundError as exc:
        if exc.name != "httptools":
            raise
        raise click.ClickException("the proxy needs httptools: pip install 'scrapewarden[proxy]'") from None

    from .preflight import check_door

    check_door(policy, state)
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(message)s")
    up_host, up_port = _upstream(upstream)
    host, port = _host_port(listen, 8080)
    settings = ProxySettings(
        upstream_host=up_host,
        upstream_port=up_port,
        scheme=forwarded_proto,
        max_header_bytes=max_header_bytes,
        max_body=max_body,
        header_timeout=header_timeout,
        connect_timeout=connect_timeout,
        read_timeout=timeout,
        grace=grace,
    )
    run(
        settings, policy=policy, state=state, host=host, port=port, workers=workers, under_attack=under_attack
    )


def register(group: click.Group) -> None:
    group.add_command(proxy)
