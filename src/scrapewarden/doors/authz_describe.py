"""Reading a forward-auth request: which request is the proxy asking about?

A forward-auth proxy does not send us the client's request; it sends a *description* of it in
headers. Each proxy family has its own convention:

- ``nginx`` (``auth_request``): ``X-Original-URI`` and ``X-Original-Method`` set in the auth
  location, ``X-Real-IP: $remote_addr``; the original request's headers come along by default.
- ``haproxy``: our Lua action (``docs/deploy/haproxy/scrapewarden.lua``) sends the nginx
  headers plus ``X-ScrapeWarden-Proxy: haproxy``.
- ``traefik`` and ``caddy`` (forwardAuth / forward_auth): ``X-Forwarded-Method``,
  ``X-Forwarded-Uri``, ``X-Forwarded-Host``, ``X-Forwarded-Proto``, and ``X-Forwarded-For`` with
  the address the proxy saw appended last.
- ``envoy`` (ext_authz, HTTP service): the original method, the original path appended to the
  service's ``path_prefix``, the original headers, ``X-Forwarded-For`` appended by Envoy.

Whom to believe: these headers are claims. They are read only when the connection that
brought them comes from a *trusted hop* (the proxy talking to us); from anyone else, the
connection's own address is the client and no address header is believed. Behind a trusted
hop, the address the proxy saw becomes the peer, and what remains of the client's own
``X-Forwarded-For`` chain goes to :func:`~scrapewarden.core.http_facts.facts_from_http`, which
believes it only as far as the policy's ``network.trusted_proxies`` reach (a CDN in front of
the proxy, say) — exactly as the middleware would.

Nothing here raises: a description we cannot read is still decided on, with what went wrong
listed in ``Described.problems`` (counted and logged by the service, scored as malformed).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from ..core.http_facts import UNKNOWN_IP, normalise_ip

Format = Literal["nginx", "haproxy", "traefik", "caddy", "envoy"]
FORMATS: tuple[str, ...] = ("auto", "nginx", "haproxy", "traefik", "caddy", "envoy")

DEFAULT_ENVOY_PREFIX = "/envoy"
"""Envoy's ``http_service.path_prefix`` in our snippet: requests under it are Envoy checks."""

# Headers that describe the request (or that the proxy added for its own hop) rather than being
# part of it. They are removed before deciding, so the client fingerprint is the same as it
# would be for the request itself.
_DESCRIPTION_HEADERS = frozenset(
    {
        "x-original-uri",
        "x-original-url",
        "x-original-method",
        "x-original-proto",
        "x-real-ip",
        "x-forwarded-method",
        "x-forwarded-uri",
        "x-forwarded-host",
        "x-forwarded-port",
        "x-forwarded-server",
        "x-forwarded-prefix",
        "x-scrapewarden-proxy",
        "x-scrapewarden-header-order",
        "x-envoy-expected-rq-timeout-ms",
        "x-envoy-internal",
        "x-envoy-external-address",
        "x-request-id",
        "content-length",
        "connection",
    }
)

MAX_DESCRIBED_URI = 16 * 1024
MAX_ORDERED = 200


@dataclass(slots=True)
class Described:
    """The original request, as reconstructed from a description."""

    format: str
    method: str
    path: str
    query: str
    headers: list[tuple[str, str]]
    """The original request's headers (lower-case names), description headers removed."""
    peer: str
    """The address the proxy saw the client connect from (``0.0.0.0`` when the description
    lacks it, the connection's own address when it comes from an untrusted hop)."""
    scheme: str = "http"
    problems: list[str] = field(default_factory=list)

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None


def detect(headers: dict[str, str], path: str, envoy_prefix: str) -> Format:
    """Which proxy family described this request (used when the format is ``auto``)."""
    if headers.get("x-scrapewarden-proxy", "").strip().lower() == "haproxy":
        return "haproxy"
    if "x-original-uri" in headers or "x-original-method" in headers:
        return "nginx"
    if "x-forwarded-uri" in headers or "x-forwarded-method" in headers:
        # Traefik and Caddy describe requests identically; Traefik also names itself.
        return "traefik" if "x-forwarded-server" in headers else "caddy"
    if envoy_prefix and (path == envoy_prefix or path.startswith(envoy_prefix + "/")):
        return "envoy"
    return "nginx"  # the most common deployment; its parser reports what is missing


def _known(fmt: str) -> Format:
    if fmt in ("nginx", "haproxy", "traefik", "caddy", "envoy"):
        return fmt  # type: ignore[return-value]
    raise ValueError(f"unknown request format {fmt!r}")


def describe(
    *,
    fmt: str,
    trusted_hop: bool,
    hop_peer: str,
    method: str,
    target: str,
    raw_headers: list[tuple[str, str]],
    envoy_prefix: str = DEFAULT_ENVOY_PREFIX,
) -> Described:
    """Reconstruct the original request from one forward-auth request. Never raises.

    ``hop_peer`` is the address of the connection to us, ``method`` and ``target`` the auth
    request's own method and request target, ``raw_headers`` its headers (lower-case names).
    """
    problems: list[str] = []
    first: dict[str, str] = {}
    for name, value in raw_headers:
        first.setdefault(name, value)
    own_path = target.partition("?")[0]
    chosen: Format = detect(first, own_path, envoy_prefix) if fmt == "auto" else _known(fmt)

    scheme = "http"
    if chosen == "envoy":
        orig_method = method
        uri = target
        if envoy_prefix and (own_path == envoy_prefix or own_path.startswith(envoy_prefix + "/")):
            uri = target[len(envoy_prefix) :] or "/"
        else:
            problems.append("envoy check outside the configured path prefix")
        proto = first.get("x-forwarded-proto")
    elif chosen in ("traefik", "caddy"):
        orig_method = first.get("x-forwarded-method", "")
        uri = first.get("x-forwarded-uri", "")
        proto = first.get("x-forwarded-proto")
    else:  # nginx, haproxy
        orig_method = first.get("x-original-method", "")
        uri = first.get("x-original-uri", "") or first.get("x-original-url", "")
        proto = first.get("x-original-proto") or first.get("x-forwarded-proto")

    orig_method = orig_method.strip()
    if not orig_method:
        problems.append("no original method in the description")
        orig_method = "GET"
    uri = uri.strip()
    if not uri:
        problems.append("no original URI in the description")
        uri = "/"
    elif len(uri) > MAX_DESCRIBED_URI:
        problems.append("original URI too long")
        uri = uri[:MAX_DESCRIBED_URI]
    if uri.startswith(("http://", "https://")):
        # An absolute URI (some proxies send X-Original-URL that way): keep path and query.
        after_scheme = uri.split("://", 1)[1]
        slash = after_scheme.find("/")
        uri = after_scheme[slash:] if slash != -1 else "/"
    path, _, query = uri.partition("?")
    path = path.split("#", 1)[0]
    if proto and trusted_hop:
        scheme = "https" if proto.split(",")[0].strip().lower() == "https" else "http"

    headers = [(n, v) for n, v in raw_headers if n not in _DESCRIPTION_HEADERS]
    if chosen not in ("nginx", "haproxy"):
        # These proxies set X-Forwarded-Proto themselves (read above); behind nginx it is the
        # client's own (or a CDN's), left for the policy's trusted proxies to judge.
        headers = [(n, v) for n, v in headers if n != "x-forwarded-proto"]
    order = first.get("x-scrapewarden-header-order")
    if order is not None and chosen == "haproxy":
        # HAProxy's Lua client sends headers from a table, in no useful order; our Lua action
        # sends the client's order alongside, so the fingerprint is the client's, not Lua's.
        rank = {name: i for i, name in enumerate(order.split(",")[:MAX_ORDERED])}
        headers.sort(key=lambda item: rank.get(item[0], len(rank)))
    peer = _peer(chosen, trusted_hop, hop_peer, first, headers, problems)
    if chosen in ("traefik", "caddy") and trusted_hop:
        host = first.get("x-forwarded-host")
        if host is not None:
            # The auth request's Host is the auth service; the original Host is described.
            headers = [(n, host if n == "host" else v) for n, v in headers]
    return Described(
        format=chosen,
        method=orig_method,
        path=path,
        query=query,
        headers=headers,
        peer=peer,
        scheme=scheme,
        problems=problems,
    )


def _peer(
    fmt: Format,
    trusted_hop: bool,
    hop_peer: str,
    first: dict[str, str],
    headers: list[tuple[str, str]],
    problems: list[str],
) -> str:
    """The address the proxy saw, and the client's own forwarding chain left in ``headers``.

    ``headers`` is edited in place: the proxy's appended ``X-Forwarded-For`` entry is removed (it
    is the peer now), and from an untrusted hop every ``X-Forwarded-For`` goes, so that even a
    policy trusting some proxies cannot be led to read a client address from it.
    """
    if not trusted_hop:
        headers[:] = [(n, v) for n, v in headers if n != "x-forwarded-for"]
        return hop_peer
    seen: str | None = None
    if fmt in ("nginx", "haproxy"):
        real = first.get("x-real-ip")
        if real is not None:
            seen = normalise_ip(real.strip())
            if seen is None:
                problems.append("X-Real-IP is not an address")
    chain_at = next((i for i, (n, _) in enumerate(headers) if n == "x-forwarded-for"), None)
    chain: list[str] = []
    if chain_at is not None:
        # The proxy appends to the last X-Forwarded-For line; earlier lines are the client's.
        last_at = max(i for i, (n, _) in enumerate(headers) if n == "x-forwarded-for")
        chain = [t.strip() for t in headers[last_at][1].split(",")]
        if fmt not in ("nginx", "haproxy") and seen is None:
            seen = normalise_ip(_strip_port(chain[-1])) if chain else None
            if seen is None:
                problems.append("X-Forwarded-For does not end with an address")
        if chain and seen is not None and normalise_ip(_strip_port(chain[-1])) == seen:
            # The proxy's own entry (nginx adds one with $proxy_add_x_forwarded_for): it is the
            # peer now. Dropping an entry equal to the peer never changes whom we believe.
            chain.pop()
        rest = ", ".join(t for t in chain if t)
        if rest:
            headers[last_at] = ("x-forwarded-for", rest)
        else:
            del headers[last_at]
    if seen is None:
        if not any("address" in p for p in problems):
            problems.append("no client address in the description")
        # Without the proxy's word on the peer, no chain can be walked safely: all such requests
        # share one stand-in address (the log line tells the operator to fix the proxy config).
        headers[:] = [(n, v) for n, v in headers if n != "x-forwarded-for"]
        return UNKNOWN_IP
    return seen


def _strip_port(token: str) -> str:
    if token.startswith("[") and "]" in token:
        return token[1 : token.index("]")]
    if token.count(":") == 1:
        host, _, port = token.partition(":")
        if port.isdigit():
            return host
    return token


def direct(
    *, trusted_hop: bool, hop_peer: str, method: str, target: str, raw_headers: list[tuple[str, str]]
) -> Described:
    """A request the proxy passed on to us as it is (our own ``/.sw/`` pages), not a description.

    The client is whom the proxy says it saw, read by the same rules as a description, so a
    challenge answered here binds to the same address as the challenge issued in an auth request:
    ``X-Real-IP`` where the proxy sets it (our nginx and HAProxy snippets, Traefik), else the
    last ``X-Forwarded-For`` entry (Caddy, Traefik and Envoy append the address they saw). Only
    from a trusted hop; from anyone else the connection's own address is the client.
    """
    problems: list[str] = []
    first: dict[str, str] = {}
    for name, value in raw_headers:
        first.setdefault(name, value)
    fmt: Format = "nginx" if "x-real-ip" in first else "caddy"
    path, _, query = target.partition("?")
    headers = [(n, v) for n, v in raw_headers if n not in _DESCRIPTION_HEADERS]
    peer = _peer(fmt, trusted_hop, hop_peer, first, headers, problems)
    scheme = "http"
    proto = first.get("x-forwarded-proto")
    if proto and trusted_hop:
        scheme = "https" if proto.split(",")[0].strip().lower() == "https" else "http"
    return Described(
        format="direct",
        method=method or "GET",
        path=path or "/",
        query=query,
        headers=headers,
        peer=peer,
        scheme=scheme,
        problems=problems,
    )
