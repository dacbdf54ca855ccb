"""Redis / Valkey state URLs: what they say, checked before anything connects.

::

    redis://[user:password@]host[:port][/db][?options]          one server
    rediss://…                                                   the same over TLS
    redis+cluster://[user:password@]host:port,host:port[?options]   Redis Cluster (seed nodes)
    redis+sentinel://[user:password@]host:port,host:port/service[/db][?options]
                                                                 the master Sentinel names

Options (all optional)::

    timeout=0.02          seconds a call may wait on a socket before Redis counts as down
    connect_timeout=0.02  seconds to open a connection (also the wait for a free pooled one)
    bulk_timeout=1        seconds for the calls that move much data (the whole ban list after
                          it changed, event reads, pruning); never the first call to a server
    prefix=scrapewarden   first part of every key, so several sites can share one server
    max_connections=16    pooled connections per process (per node on Cluster)
    max_events=1000000    the event stream is trimmed to about this many entries
    max_pending=100000    writes held locally while Redis is unreachable (oldest kept)
    tls=1                 TLS on redis+cluster:// and redis+sentinel:// (rediss:// implies it)
    ssl_ca_certs=PATH     CA bundle for TLS; ssl_cert_reqs=required|optional|none
    ssl_certfile=PATH, ssl_keyfile=PATH   client certificate for TLS
    sentinel_password=…   when the Sentinels themselves need a password

Defaults are tuned for a server on the same network: a healthy Redis answers these calls in
well under a millisecond, so 20 ms without an answer means trouble, and the request is better
served from local state than kept waiting.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import parse_qsl, unquote, urlsplit

from ..errors import StateURLError

Mode = Literal["single", "cluster", "sentinel"]

DEFAULT_PORT = 6379
DEFAULT_SENTINEL_PORT = 26379
DEFAULT_TIMEOUT = 0.02
DEFAULT_BULK_TIMEOUT = 1.0
DEFAULT_PREFIX = "scrapewarden"
DEFAULT_MAX_CONNECTIONS = 16
DEFAULT_MAX_EVENTS = 1_000_000
DEFAULT_MAX_PENDING = 100_000

_SCHEMES: dict[str, tuple[Mode, bool]] = {
    "redis": ("single", False),
    "rediss": ("single", True),
    "redis+cluster": ("cluster", False),
    "rediss+cluster": ("cluster", True),
    "redis+sentinel": ("sentinel", False),
    "rediss+sentinel": ("sentinel", True),
}
SCHEMES = tuple(_SCHEMES)

_OPTIONS = (
    "timeout",
    "connect_timeout",
    "bulk_timeout",
    "prefix",
    "max_connections",
    "max_events",
    "max_pending",
    "tls",
    "ssl_ca_certs",
    "ssl_cert_reqs",
    "ssl_certfile",
    "ssl_keyfile",
    "sentinel_password",
)
# Braces would move the hash tag, colons and dots are the usual separators.
_PREFIX = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


@dataclass(frozen=True, slots=True)
class RedisConfig:
    url: str
    """The URL as given, password redacted (fit for logs)."""
    mode: Mode
    nodes: tuple[tuple[str, int], ...]
    """The server (single), seed nodes (cluster) or Sentinels (sentinel)."""
    db: int = 0
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    service: str | None = None
    """Sentinel: the monitored master's name."""
    tls: bool = False
    timeout: float = DEFAULT_TIMEOUT
    connect_timeout: float = DEFAULT_TIMEOUT
    bulk_timeout: float = DEFAULT_BULK_TIMEOUT
    prefix: str = DEFAULT_PREFIX
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    max_events: int = DEFAULT_MAX_EVENTS
    max_pending: int = DEFAULT_MAX_PENDING
    ssl_ca_certs: str | None = None
    ssl_cert_reqs: str = "required"
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    sentinel_password: str | None = field(default=None, repr=False)


def parse_redis_url(url: str, shown: str) -> RedisConfig:
    """Read a Redis state URL. ``shown`` is the URL with its password redacted, for messages.

    Raises :class:`StateURLError` naming the URL and what is wrong with it.
    """

    def bad(why: str) -> StateURLError:
        return StateURLError(f"bad state URL {shown!r}: {why}")

    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in _SCHEMES:
        raise bad(f"unknown scheme; expected one of {', '.join(s + '://' for s in SCHEMES)}")
    mode, tls = _SCHEMES[scheme.lower()]
    # urlsplit cannot read a comma-separated host list with ports, so only the query, path
    # and fragment are left to it; the host part is read here.
    netloc, tail = re.fullmatch(r"([^/?#]*)(.*)", rest, re.DOTALL).groups()  # type: ignore[union-attr]
    parts = urlsplit("x://h" + tail)
    path = parts.path
    if parts.fragment:
        raise bad("a Redis URL takes no #fragment")

    userinfo, at, hosts = netloc.rpartition("@")
    username = password = None
    if at:
        user, colon, pw = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(pw) if colon else None
    if not hosts:
        raise bad("no host named (e.g. redis://127.0.0.1:6379/0)")
    default_port = DEFAULT_SENTINEL_PORT if mode == "sentinel" else DEFAULT_PORT
    nodes = tuple(_host_port(h, default_port, bad) for h in hosts.split(","))
    if mode == "single" and len(nodes) > 1:
        raise bad("several hosts need redis+cluster:// or redis+sentinel://")

    segments = [unquote(s) for s in path.split("/") if s]
    service = None
    if mode == "sentinel":
        if not segments:
            raise bad("name the monitored master: redis+sentinel://host:port,host:port/service_name")
        service, segments = segments[0], segments[1:]
    db = 0
    if segments:
        if len(segments) > 1 or not segments[0].isdigit():
            raise bad(f"the path must be a database number, not {'/'.join(segments)!r}")
        db = int(segments[0])
        if mode == "cluster" and db != 0:
            raise bad("Redis Cluster has only database 0")

    options: dict[str, str] = {}
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name not in _OPTIONS:
            raise bad(f"unknown option {name!r}; known: {', '.join(_OPTIONS)}")
        options[name] = value

    def seconds(name: str, default: float = DEFAULT_TIMEOUT) -> float:
        raw = options.get(name)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            raise bad(f"{name} must be a number of seconds, not {raw!r}") from None
        if not 0 < value <= 60:
            raise bad(f"{name} must be more than 0 and at most 60 seconds, not {raw!r}")
        return value

    def count(name: str, default: int) -> int:
        raw = options.get(name)
        if raw is None:
            return default
        if not raw.isdigit() or int(raw) <= 0:
            raise bad(f"{name} must be a positive whole number, not {raw!r}")
        return int(raw)

    prefix = options.get("prefix", DEFAULT_PREFIX)
    if not _PREFIX.fullmatch(prefix):
        raise bad(f"prefix must be 1-64 of A-Z a-z 0-9 _ . : - (no braces), not {prefix!r}")
    if "tls" in options:
        if options["tls"] not in ("0", "1", "true", "false", "yes", "no"):
            raise bad(f"tls must be 1 or 0, not {options['tls']!r}")
        tls = tls or options["tls"] in ("1", "true", "yes")
    cert_reqs = options.get("ssl_cert_reqs", "required")
    if cert_reqs not in ("required", "optional", "none"):
        raise bad(f"ssl_cert_reqs must be required, optional or none, not {cert_reqs!r}")
    if not tls and any(k.startswith("ssl_") for k in options):
        raise bad("ssl_* options need TLS: use rediss:// (or tls=1)")

    return RedisConfig(
        url=shown,
        mode=mode,
        nodes=nodes,
        db=db,
        username=username,
        password=password,
        service=service,
        tls=tls,
        timeout=seconds("timeout"),
        connect_timeout=seconds("connect_timeout"),
        bulk_timeout=seconds("bulk_timeout", DEFAULT_BULK_TIMEOUT),
        prefix=prefix,
        max_connections=count("max_connections", DEFAULT_MAX_CONNECTIONS),
        max_events=count("max_events", DEFAULT_MAX_EVENTS),
        max_pending=count("max_pending", DEFAULT_MAX_PENDING),
        ssl_ca_certs=options.get("ssl_ca_certs"),
        ssl_cert_reqs=cert_reqs,
        ssl_certfile=options.get("ssl_certfile"),
        ssl_keyfile=options.get("ssl_keyfile"),
        sentinel_password=options.get("sentinel_password"),
    )


def _host_port(text: str, default_port: int, bad: object) -> tuple[str, int]:
    assert callable(bad)
    text = text.strip()
    if text.startswith("["):  # [::1]:6379
        host, close, after = text[1:].partition("]")
        if not close or (after and not after.startswith(":")):
            raise bad(f"bad IPv6 host {text!r}; write [::1]:6379")
        port_text = after[1:] if after else ""
    else:
        host, colon, port_text = text.rpartition(":")
        if not colon:
            host, port_text = text, ""
        elif ":" in host:
            raise bad(f"bad host {text!r}; put IPv6 addresses in brackets: [::1]:6379")
    if not host:
        raise bad(f"empty host in {text!r}")
    if not port_text:
        return host, default_port
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise bad(f"bad port in {text!r}")
    return host, int(port_text)
