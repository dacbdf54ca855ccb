"""``scrapewarden authz``: the forward-auth decision service for nginx, HAProxy, Caddy, Traefik, Envoy."""

from __future__ import annotations

import asyncio
import logging

import click

from ..doors.authz_describe import DEFAULT_ENVOY_PREFIX, FORMATS


def register(group: click.Group) -> None:
    group.add_command(authz)


@click.command()
@click.option("--listen", default="127.0.0.1:9100", show_default=True, metavar="HOST:PORT")
@click.option(
    "--policy", type=click.Path(exists=True, dir_okay=False), default=None, help="Policy TOML file."
)
@click.option(
    "--state",
    "state_url",
    envvar="SCRAPEWARDEN_STATE",
    default=None,
    show_envvar=True,
    metavar="URL",
    help="State store shared with other processes, e.g. sqlite:////var/lib/scrapewarden/state.db "
    "(default: the policy's state key, else memory://, this process only).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="auto",
    show_default=True,
    help="How requests are described; auto-detected per request by default.",
)
@click.option(
    "--challenge-url",
    default="",
    metavar="URL",
    help="Answer challenges with a 302 to this address (with ?next=<original path>) instead of the "
    "challenge page in place (403).",
)
@click.option(
    "--under-attack",
    is_flag=True,
    help="Challenge every visitor without clearance (the policy's challenge.under_attack), "
    "static assets excepted.",
)
@click.option(
    "--trusted-hop",
    "trusted_hops",
    multiple=True,
    metavar="CIDR",
    help="Address(es) of the proxy that asks us (repeatable). Only these, plus the policy's "
    "network.trusted_proxies, may tell us who the client is. Default: 127.0.0.1/32 and ::1/128.",
)
@click.option("--envoy-prefix", default=DEFAULT_ENVOY_PREFIX, show_default=True, help="Envoy's path_prefix.")
@click.option(
    "--cache-seconds",
    type=float,
    default=5.0,
    show_default=True,
    help="Reuse an allow for a client's static assets this long (0: decide every request in full).",
)
@click.option("--log-level", default="info", show_default=True)
def authz(
    listen: str,
    policy: str | None,
    state_url: str | None,
    fmt: str,
    challenge_url: str,
    under_attack: bool,
    trusted_hops: tuple[str, ...],
    envoy_prefix: str,
    cache_seconds: float,
    log_level: str,
) -> None:
    """Answer forward-auth requests: 200 to let a request through, 429/403/302 to refuse it.

    Also serves the challenge pages under /.sw/ (route that path from the proxy to here).
    Listens on loopback by default: put it next to the proxy. See docs/deploy/ for nginx,
    HAProxy, Caddy, Traefik and Envoy configurations.
    """
    import ipaddress

    from ..doors.authz import DEFAULT_TRUSTED_HOPS, AuthzConfig, AuthzService, parse_listen, serve
    from ..warden import Warden
    from .preflight import check_door

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        host, port = parse_listen(listen)
        hops = tuple(str(ipaddress.ip_network(h, strict=False)) for h in trusted_hops)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
    if challenge_url and not challenge_url.lower().startswith(("http://", "https://", "/")):
        raise click.BadParameter("--challenge-url must be an http(s) URL or a site path")
    check_door(policy, state_url)
    warden = Warden(policy, state=state_url, under_attack=under_attack)
    if warden.policy.challenge.under_attack:
        logging.getLogger("scrapewarden.authz").warning(
            "under attack: every visitor without clearance is challenged (static assets excepted)"
        )
    config = AuthzConfig(
        format=fmt,
        trusted_hops=hops or DEFAULT_TRUSTED_HOPS,
        challenge_url=challenge_url,
        envoy_prefix=envoy_prefix.rstrip("/"),
        cache_seconds=cache_seconds,
    )
    service = AuthzService(warden, config)
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is not available on every platform
        asyncio.run(serve(service, host, port))
    else:
        uvloop.run(serve(service, host, port))
